// The request log, with promise-based waits so tests can synchronise on what the server saw
// (e.g. "the abort reached the emulator") instead of sleeping.

import { EventEmitter } from 'node:events';
import type { RecordedRequest } from './types.js';

/** Oldest records are dropped beyond this, so a long-running demo does not grow without bound. */
const MAX_RECORDS = 10_000;

export class Recorder {
  readonly requests: RecordedRequest[] = [];
  private nextId = 1;
  private readonly changes = new EventEmitter();

  constructor() {
    this.changes.setMaxListeners(0);
  }

  open(method: string, path: string): RecordedRequest {
    const rec: RecordedRequest = { id: this.nextId++, method, path, body: undefined, receivedAt: Date.now(), outcome: 'open' };
    this.requests.push(rec);
    if (this.requests.length > MAX_RECORDS) this.requests.splice(0, this.requests.length - MAX_RECORDS);
    this.changes.emit('change');
    return rec;
  }

  setBody(rec: RecordedRequest, body: unknown): void {
    rec.body = body;
    this.changes.emit('change');
  }

  scheduled(rec: RecordedRequest): void {
    if (rec.scheduledAt !== undefined) return;
    rec.scheduledAt = Date.now();
    this.changes.emit('change');
  }

  /** The first final outcome wins: later events (e.g. the socket closing after an error) don't overwrite it. */
  end(rec: RecordedRequest, outcome: Exclude<RecordedRequest['outcome'], 'open'>): void {
    if (rec.outcome !== 'open') return;
    rec.outcome = outcome;
    rec.endedAt = Date.now();
    this.changes.emit('change');
  }

  waitFor(pred: (r: RecordedRequest) => boolean, timeoutMs: number, what: string): Promise<RecordedRequest> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.requests.find(pred);
        if (!hit) return false;
        cleanup();
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`emulator: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.changes.off('change', check);
      };
      this.changes.on('change', check);
      check();
    });
  }
}
