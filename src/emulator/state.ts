// Everything the route handlers share: installed models, the pullable registry, the scheduler and
// the tunable settings.

import { FOREVER_MS } from './duration.js';
import { nameKey, normalizeModelName } from './models.js';
import { Scheduler } from './sched.js';
import type { EmulatedModel, EmulatorConfig } from './types.js';

export interface Installed {
  model: EmulatedModel;
  modifiedAt: number; // ms epoch
}

/** One GPU of 24 GiB: the default catalogue's usual loads fit side by side. */
export const DEFAULT_VRAM_BYTES = 24 * 1024 ** 3;

/** Ollama's defaults (envconfig) for everything that is not given. */
export function withDefaults(c: EmulatorConfig): Required<EmulatorConfig> {
  return {
    numParallel: c.numParallel ?? 1,
    maxQueue: c.maxQueue ?? 512,
    vramBytes: c.vramBytes ?? DEFAULT_VRAM_BYTES,
    maxLoadedModels: c.maxLoadedModels ?? 3,
    defaultKeepAliveSeconds: c.defaultKeepAliveSeconds ?? 300,
    tokenDelayMs: c.tokenDelayMs ?? 0,
    pullVerifyMs: c.pullVerifyMs ?? 5,
  };
}

/** An error text for a malformed setting (used by configure() and the control route), else undefined. */
export function checkConfig(c: unknown): string | undefined {
  if (!c || typeof c !== 'object' || Array.isArray(c)) return 'body must be an object of settings';
  const limits: Record<string, { min: number; integer: boolean }> = {
    numParallel: { min: 1, integer: true },
    maxQueue: { min: 0, integer: true },
    vramBytes: { min: 0, integer: true },
    maxLoadedModels: { min: 1, integer: true },
    defaultKeepAliveSeconds: { min: -Infinity, integer: false },
    tokenDelayMs: { min: 0, integer: false },
    pullVerifyMs: { min: 0, integer: false },
  };
  for (const [key, value] of Object.entries(c)) {
    const limit = limits[key];
    if (!limit) return `unknown setting ${JSON.stringify(key)} (known: ${Object.keys(limits).join(', ')})`;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < limit.min || (limit.integer && !Number.isInteger(value))) {
      return `${key} must be ${limit.integer ? 'an integer' : 'a number'}${Number.isFinite(limit.min) ? ` >= ${limit.min}` : ''}`;
    }
  }
  return undefined;
}

export class EmulatorState {
  readonly installed = new Map<string, Installed>(); // by nameKey
  readonly registry = new Map<string, EmulatedModel>(); // by nameKey
  readonly sched: Scheduler;
  readonly pullStepDelayMs: number;
  readonly version: string;
  tokenDelayMs: number;
  pullVerifyMs: number;
  private defaultKeepAliveSeconds: number;

  constructor(opts: {
    models: EmulatedModel[];
    registry: EmulatedModel[];
    config: Required<EmulatorConfig>;
    pullStepDelayMs: number;
    version: string;
  }) {
    const c = opts.config;
    this.tokenDelayMs = c.tokenDelayMs;
    this.pullVerifyMs = c.pullVerifyMs;
    this.defaultKeepAliveSeconds = c.defaultKeepAliveSeconds;
    this.pullStepDelayMs = opts.pullStepDelayMs;
    this.version = opts.version;
    this.sched = new Scheduler({
      numParallel: c.numParallel,
      maxQueue: c.maxQueue,
      vramBytes: c.vramBytes,
      maxLoadedModels: c.maxLoadedModels,
      defaultKeepAliveMs: keepAliveMs(c.defaultKeepAliveSeconds),
    });
    // Stagger modified_at so /api/tags (newest first) lists models in catalogue order.
    const now = Date.now();
    opts.models.forEach((m, i) => this.install(m, now - i * 86_400_000));
    for (const m of opts.registry) this.registry.set(nameKey(m.name), normalized(m));
  }

  config(): Required<EmulatorConfig> {
    const { numParallel, maxQueue, vramBytes, maxLoadedModels } = this.sched.config;
    return {
      numParallel,
      maxQueue,
      vramBytes,
      maxLoadedModels,
      defaultKeepAliveSeconds: this.defaultKeepAliveSeconds,
      tokenDelayMs: this.tokenDelayMs,
      pullVerifyMs: this.pullVerifyMs,
    };
  }

  /** Apply new settings (already checked); models loaded earlier keep their VRAM placement. */
  configure(c: EmulatorConfig): Required<EmulatorConfig> {
    const err = checkConfig(c);
    if (err) throw new TypeError(err);
    const next = { ...this.config(), ...c };
    this.tokenDelayMs = next.tokenDelayMs;
    this.pullVerifyMs = next.pullVerifyMs;
    this.defaultKeepAliveSeconds = next.defaultKeepAliveSeconds;
    Object.assign(this.sched.config, {
      numParallel: next.numParallel,
      maxQueue: next.maxQueue,
      vramBytes: next.vramBytes,
      maxLoadedModels: next.maxLoadedModels,
      defaultKeepAliveMs: keepAliveMs(next.defaultKeepAliveSeconds),
    });
    this.sched.reconfigured();
    return this.config();
  }

  install(m: EmulatedModel, modifiedAt = Date.now()): Installed {
    const entry = { model: normalized(m), modifiedAt };
    this.installed.set(nameKey(m.name), entry);
    return entry;
  }

  /** Look a model up by the name as a client sent it ('Llama3.2' finds 'llama3.2:latest'). */
  find(name: string): Installed | undefined {
    return this.installed.get(nameKey(name));
  }
}

/** Like OLLAMA_KEEP_ALIVE: a negative value means forever. */
function keepAliveMs(seconds: number): number {
  return seconds < 0 ? FOREVER_MS : seconds * 1000;
}

function normalized(m: EmulatedModel): EmulatedModel {
  return { ...m, name: normalizeModelName(m.name), capabilities: [...m.capabilities] };
}
