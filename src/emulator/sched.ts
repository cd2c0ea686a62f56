// The scheduler, ported from Ollama's server/sched.go (and the runner's request semaphore in
// llm/llama_server.go):
// - A request for a loaded model that needs no reload uses it at once (getRunner -> useLoadedRunner);
//   every other request goes through one pending queue of `maxQueue` places (pendingReqCh), beyond
//   which it fails with ErrMaxQueue (503), and the queue is worked one request at a time
//   (processPending), waiting for evictions as needed.
// - keep_alive is sticky: a request without it leaves a loaded model's duration as it was
//   (useLoadedRunner); a fresh load without it gets the default (load: envconfig.KeepAlive()).
// - A model that does not fit next to the loaded ones (VRAM or OLLAMA_MAX_LOADED_MODELS) evicts:
//   idle runners first, in findRunnerToUnload's order (ByDurationAndName: shortest keep_alive, then
//   model path); with none idle, the first in that order is marked to unload when its requests end.
//   Only the first model on an empty GPU may load partly (load(..., requireFull=false)).
// - At most `numParallel` requests generate per runner at a time (OLLAMA_NUM_PARALLEL, the runner's
//   semaphore.Weighted, FIFO); the rest wait with nothing written to them.
// Idle expiry is checked lazily whenever the state is read.

import { EventEmitter } from 'node:events';
import { digestOf } from './models.js';
import type { EmulatedModel, RunningModel } from './types.js';

/** OLLAMA_CONTEXT_LENGTH default (faq: 4096), capped by the model's training context like the runner does. */
export const DEFAULT_NUM_CTX = 4096;

export interface SchedConfig {
  /** OLLAMA_NUM_PARALLEL (envconfig default 1). Read live, so a change applies to waiting requests too. */
  numParallel: number;
  /** OLLAMA_MAX_QUEUE (default 512): places in the pending queue. */
  maxQueue: number;
  /** Emulated GPU memory in bytes; 0 = CPU only (everything loads with size_vram 0). */
  vramBytes: number;
  /** OLLAMA_MAX_LOADED_MODELS (0 in envconfig = 3 per GPU; the emulator has one GPU). */
  maxLoadedModels: number;
  /** OLLAMA_KEEP_ALIVE (default 5m), for models loaded without keep_alive. */
  defaultKeepAliveMs: number;
}

export interface Runner {
  model: EmulatedModel;
  contextLength: number;
  /** sessionDuration */
  keepAliveMs: number;
  expiresAt: number;
  /** Requests scheduled on it (refCount), including those waiting for a slot. */
  refCount: number;
  sizeVram: number;
  /** Requests holding one of the numParallel slots. */
  busy: number;
  slotWaiters: Array<{ model: string; grant: () => void }>;
  unloaded: boolean;
}

export interface Lease {
  runner: Runner;
  /** A fresh load (for load_duration). */
  cold: boolean;
}

interface Pending {
  model: EmulatedModel;
  keepAliveMs: number | undefined;
  contextLength: number;
  signal: AbortSignal;
  resolve: (lease: Lease | 'aborted') => void;
}

export type ScheduleResult = Lease | 'busy' | 'aborted';

/** Model path the way sched.go compares it: the weights blob. */
const modelPath = (m: EmulatedModel) => `/root/.ollama/models/blobs/sha256-${digestOf(m)}`;

/** ByDurationAndName: uint64(sessionDuration) ascending (a negative would sort last), then model path. */
function byDurationAndName(a: Runner, b: Runner): number {
  if (a.keepAliveMs !== b.keepAliveMs) return a.keepAliveMs < b.keepAliveMs ? -1 : 1;
  const pa = modelPath(a.model);
  const pb = modelPath(b.model);
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

export class Scheduler {
  private readonly loaded = new Map<string, Runner>(); // by normalized name
  private readonly pending: Pending[] = [];
  /** The request processPending has taken off the queue and is placing (no longer counts against maxQueue). */
  private current: Pending | undefined;
  private readonly unloads = new EventEmitter();

  constructor(readonly config: SchedConfig) {
    this.unloads.setMaxListeners(0);
  }

  private sweep(now = Date.now()): void {
    for (const r of this.loaded.values()) if (r.refCount === 0 && r.expiresAt <= now) this.drop(r);
  }

  private drop(r: Runner): void {
    if (r.unloaded) return;
    r.unloaded = true;
    if (this.loaded.get(r.model.name) === r) this.loaded.delete(r.model.name);
    this.unloads.emit('unloaded');
  }

  private effectiveCtx(model: EmulatedModel, numCtx: number | undefined): number {
    return Math.min(numCtx && numCtx > 0 ? numCtx : DEFAULT_NUM_CTX, model.contextLength);
  }

  /**
   * getRunner: a loaded runner that needs no reload is used at once; otherwise the request joins
   * the pending queue, or gets 'busy' when that queue is full. Resolves when the request holds the
   * runner (release it with `release`), or 'aborted' if the client left while it waited.
   */
  schedule(model: EmulatedModel, keepAliveMs: number | undefined, numCtx: number | undefined, signal: AbortSignal): Promise<ScheduleResult> {
    this.sweep();
    const contextLength = this.effectiveCtx(model, numCtx);
    const runner = this.loaded.get(model.name);
    if (runner && runner.contextLength === contextLength) return Promise.resolve({ runner: this.use(runner, keepAliveMs), cold: false });
    // A Go channel send with `default`: it succeeds while the buffer has room, or unbuffered when
    // processPending is idle and receiving.
    const idle = this.pending.length === 0 && this.current === undefined;
    if (this.pending.length >= this.config.maxQueue && !idle) return Promise.resolve('busy');
    return new Promise((resolve) => {
      const p: Pending = { model, keepAliveMs, contextLength, signal, resolve };
      const onAbort = () => {
        const i = this.pending.indexOf(p);
        if (i >= 0) this.pending.splice(i, 1);
        resolve('aborted');
      };
      signal.addEventListener('abort', onAbort, { once: true });
      p.resolve = (lease) => {
        signal.removeEventListener('abort', onAbort);
        resolve(lease);
      };
      this.pending.push(p);
      if (!this.current) void this.processPending();
    });
  }

  /** useLoadedRunner: one more reference; keep_alive only changes when the request states one. */
  private use(r: Runner, keepAliveMs: number | undefined): Runner {
    r.refCount += 1;
    if (keepAliveMs !== undefined) r.keepAliveMs = keepAliveMs;
    r.expiresAt = Date.now() + r.keepAliveMs;
    return r;
  }

  private async processPending(): Promise<void> {
    while (this.pending.length > 0) {
      const p = this.pending.shift()!;
      this.current = p;
      try {
        await this.place(p);
      } finally {
        this.current = undefined;
      }
    }
  }

  /** One round of processPending's inner loop, repeated until the request holds a runner. */
  private async place(p: Pending): Promise<void> {
    for (;;) {
      if (p.signal.aborted) return; // "pending request cancelled or timed out, skipping scheduling"
      this.sweep();
      let toExpire: Runner | undefined;
      const runner = this.loaded.get(p.model.name);
      if (runner) {
        if (runner.contextLength === p.contextLength) return p.resolve({ runner: this.use(runner, p.keepAliveMs), cold: false });
        toExpire = runner; // needsReload
      } else if (this.loaded.size >= this.config.maxLoadedModels) {
        toExpire = this.runnerToUnload();
      } else if (this.loaded.size === 0 || this.fits(p.model)) {
        return p.resolve({ runner: this.load(p), cold: true });
      } else {
        toExpire = this.runnerToUnload();
      }
      if (!toExpire) continue;
      // "resetting model to expire immediately to make room", then wait for an unload.
      toExpire.keepAliveMs = 0;
      const unloaded = this.nextUnload();
      if (toExpire.refCount <= 0) this.drop(toExpire);
      await unloaded;
    }
  }

  /**
   * The next unload: an event, or the moment an idle runner's keep_alive runs out (Ollama's expire
   * timer; here expiry is otherwise only noticed when the state is read).
   */
  private nextUnload(): Promise<void> {
    return new Promise((resolve) => {
      const idle = [...this.loaded.values()].filter((r) => r.refCount === 0).map((r) => r.expiresAt - Date.now());
      const wait = idle.length > 0 ? Math.min(...idle) : Infinity;
      const done = () => {
        clearTimeout(timer);
        this.unloads.off('unloaded', done);
        resolve();
      };
      const timer = Number.isFinite(wait) && wait < 2 ** 31 ? setTimeout(done, Math.max(0, wait) + 1) : undefined;
      this.unloads.on('unloaded', done);
    });
  }

  private fits(model: EmulatedModel): boolean {
    if (this.config.vramBytes <= 0) return true; // CPU only: no VRAM to run out of
    let used = 0;
    for (const r of this.loaded.values()) used += r.sizeVram;
    return used + model.size <= this.config.vramBytes;
  }

  /** findRunnerToUnload: the first idle runner in ByDurationAndName order, else the first of all. */
  private runnerToUnload(): Runner | undefined {
    const list = [...this.loaded.values()].sort(byDurationAndName);
    return list.find((r) => r.refCount === 0) ?? list[0];
  }

  private load(p: Pending): Runner {
    const keepAliveMs = p.keepAliveMs ?? this.config.defaultKeepAliveMs;
    const r: Runner = {
      model: p.model,
      contextLength: p.contextLength,
      keepAliveMs,
      expiresAt: Date.now() + keepAliveMs,
      refCount: 1,
      // Only reached alone on the GPU or when it fits: what does not fit stays on the CPU.
      sizeVram: Math.max(0, Math.min(p.model.size, this.config.vramBytes)),
      busy: 0,
      slotWaiters: [],
      unloaded: false,
    };
    this.loaded.set(p.model.name, r);
    return r;
  }

  /** The runner semaphore (NUM_PARALLEL slots, FIFO). False when the client left while waiting. */
  acquireSlot(r: Runner, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (r.slotWaiters.length === 0 && r.busy < this.config.numParallel) {
      r.busy += 1;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = {
        model: r.model.name,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
      const onAbort = () => {
        const i = r.slotWaiters.indexOf(waiter);
        if (i >= 0) r.slotWaiters.splice(i, 1);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      r.slotWaiters.push(waiter);
    });
  }

  releaseSlot(r: Runner): void {
    r.busy = Math.max(0, r.busy - 1);
    this.grantSlots(r);
  }

  private grantSlots(r: Runner): void {
    while (r.slotWaiters.length > 0 && r.busy < this.config.numParallel) {
      r.busy += 1;
      r.slotWaiters.shift()!.grant();
    }
  }

  /** A larger numParallel lets waiting requests start at once. */
  reconfigured(): void {
    for (const r of this.loaded.values()) this.grantSlots(r);
    if (this.pending.length > 0 && !this.current) void this.processPending();
  }

  /** processCompleted: the last reference going starts the keep_alive clock, or unloads for <= 0. */
  release(r: Runner): void {
    r.refCount = Math.max(0, r.refCount - 1);
    if (r.refCount > 0) return;
    if (r.keepAliveMs <= 0) this.drop(r);
    else r.expiresAt = Date.now() + r.keepAliveMs;
  }

  /** expireRunner (empty prompt + keep_alive 0, or delete): now, or when the running requests finish. */
  unload(name: string): void {
    const r = this.loaded.get(name);
    if (!r) return;
    r.keepAliveMs = 0;
    r.expiresAt = Date.now();
    if (r.refCount === 0) this.drop(r);
  }

  isLoaded(name: string): boolean {
    this.sweep();
    return this.loaded.has(name);
  }

  /** Requests that wait: for scheduling (pending queue) or for a generation slot. */
  queued(name?: string): number {
    const match = (n: string) => name === undefined || n === name;
    let n = this.pending.filter((p) => match(p.model.name)).length;
    if (this.current && match(this.current.model.name)) n += 1;
    for (const r of this.loaded.values()) n += r.slotWaiters.filter((w) => match(w.model)).length;
    return n;
  }

  /** Longest remaining time first (by whole seconds), as /api/ps sorts. */
  running(): Array<RunningModel & { model: EmulatedModel }> {
    this.sweep();
    return [...this.loaded.values()]
      .sort((a, b) => Math.floor(b.expiresAt / 1000) - Math.floor(a.expiresAt / 1000))
      .map((r) => ({
        name: r.model.name,
        model: r.model,
        expiresAt: new Date(r.expiresAt),
        size: r.model.size,
        sizeVram: r.sizeVram,
        contextLength: r.contextLength,
      }));
  }

  clear(): void {
    for (const r of [...this.loaded.values()]) this.drop(r);
  }
}
