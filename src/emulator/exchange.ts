// One request/response pair as the handlers see it, plus the NDJSON stream writer that applies the
// mid-stream faults (errorAfter / stall / truncate) at the right token.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { RUNNER_ERROR } from './faults.js';
import type { EmulatorState } from './state.js';
import type { Fault, RecordedRequest } from './types.js';
import { JSON_TYPE, NDJSON_TYPE, isWritable, sendError, sleep, untilAborted } from './wire.js';

export type TokenFault = Extract<Fault, { kind: 'errorAfter' | 'stall' | 'truncate' }>;

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  raw: Buffer;
  record: RecordedRequest;
  state: EmulatorState;
  /** Aborted when the client goes away or the emulator stops: producers must stop at once. */
  signal: AbortSignal;
  /** A mid-stream fault for this request, if one matched. */
  fault?: TokenFault;
  /** Set when the response ends abnormally with a 200 status (error line, truncation). */
  failed: boolean;
  /** Set when the server itself destroyed the socket (truncated non-stream reply). */
  serverClosed: boolean;
  /** Record that the scheduler gave the request its runner and slot. */
  scheduled(): void;
}

function faultThreshold(f: TokenFault): number {
  return f.kind === 'errorAfter' ? f.tokens : f.afterTokens;
}

/** NDJSON streaming: one `res.write` per object, honouring backpressure and client disconnects. */
export class NdjsonStream {
  private units = 0;

  constructor(private readonly ex: Exchange) {}

  private start(): void {
    const { res } = this.ex;
    if (!res.headersSent && isWritable(res)) {
      res.writeHead(200, { 'Content-Type': NDJSON_TYPE });
      res.flushHeaders();
    }
  }

  private async write(obj: unknown): Promise<boolean> {
    const { res, signal } = this.ex;
    if (signal.aborted || !isWritable(res)) return false;
    this.start();
    if (!res.write(`${JSON.stringify(obj)}\n`)) {
      try {
        await once(res, 'drain', { signal });
      } catch {
        return false; // aborted while the socket buffer was full
      }
    }
    return !signal.aborted && isWritable(res);
  }

  /**
   * Applies the fault once its token count is reached, or at the end of a reply shorter than that
   * (`final`), so a faulted request never ends normally. Returns false when the stream is over.
   */
  private async gate(final: boolean): Promise<boolean> {
    const f = this.ex.fault;
    if (!f || (!final && this.units < faultThreshold(f))) return !this.ex.signal.aborted;
    const { res } = this.ex;
    // routes.go streamResponse: an error before the first chunk still gets a real status (500) and a
    // JSON body; only after the first chunk does it become a 200 stream's last {"error"} line.
    if (f.kind === 'errorAfter') {
      this.fail(500, f.error ?? RUNNER_ERROR);
      return false;
    }
    this.start();
    this.ex.failed = true;
    switch (f.kind) {
      case 'truncate':
        if (isWritable(res)) res.end();
        break;
      case 'stall':
        await untilAborted(this.ex.signal); // never write again; the close handler records the outcome
        break;
    }
    return false;
  }

  /** One intermediate object (a token, a progress step). */
  async unit(obj: unknown): Promise<boolean> {
    if (!(await this.gate(false))) return false;
    this.units += 1;
    return this.write(obj);
  }

  /** The last object (done:true / status:success); ends the response. */
  async finish(obj: unknown): Promise<void> {
    if (!(await this.gate(true))) return;
    if (await this.write(obj)) this.ex.res.end();
  }

  /**
   * An error while streaming. Before the first byte: a real status and JSON body, as Ollama's
   * streamResponse does; afterwards: one {"error"} line, then the stream closes (status stays 200).
   */
  fail(status: number, message: string): void {
    const { res } = this.ex;
    if (!res.headersSent) return sendError(res, status, message);
    this.ex.failed = true;
    if (isWritable(res)) res.end(`${JSON.stringify({ error: message })}\n`);
  }
}

/**
 * Faults on a reply that is a single JSON object (stream:false, load/unload, other routes):
 * errorAfter -> 500 after the tokens' worth of time, stall -> never answer, truncate -> headers then
 * a dropped connection. Returns true when the fault handled the request.
 */
export async function applySingleReplyFault(ex: Exchange, tokenDelayMs: number): Promise<boolean> {
  const f = ex.fault;
  if (!f) return false;
  const { res } = ex;
  switch (f.kind) {
    case 'errorAfter':
      if (await sleep(f.tokens * tokenDelayMs, ex.signal)) sendError(res, 500, f.error ?? RUNNER_ERROR);
      return true;
    case 'stall':
      await untilAborted(ex.signal);
      return true;
    case 'truncate':
      if (!(await sleep(f.afterTokens * tokenDelayMs, ex.signal)) || !isWritable(res)) return true;
      ex.serverClosed = true;
      res.writeHead(200, { 'Content-Type': JSON_TYPE });
      res.flushHeaders();
      res.socket?.destroy();
      return true;
  }
}
