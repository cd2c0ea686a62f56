// Everything the route handlers share: installed models, the pullable registry, loaded models and
// the tunable delays.

import { nameKey, normalizeModelName } from './models.js';
import { Runtime } from './runtime.js';
import type { EmulatedModel } from './types.js';

export interface Installed {
  model: EmulatedModel;
  modifiedAt: number; // ms epoch
}

export class EmulatorState {
  readonly installed = new Map<string, Installed>(); // by nameKey
  readonly registry = new Map<string, EmulatedModel>(); // by nameKey
  readonly runtime: Runtime;
  readonly pullStepDelayMs: number;
  readonly version: string;
  tokenDelayMs: number;

  constructor(opts: {
    models: EmulatedModel[];
    registry: EmulatedModel[];
    tokenDelayMs: number;
    pullStepDelayMs: number;
    defaultKeepAliveMs: number;
    version: string;
  }) {
    this.tokenDelayMs = opts.tokenDelayMs;
    this.pullStepDelayMs = opts.pullStepDelayMs;
    this.version = opts.version;
    this.runtime = new Runtime(opts.defaultKeepAliveMs);
    // Stagger modified_at so /api/tags (newest first) lists models in catalogue order.
    const now = Date.now();
    opts.models.forEach((m, i) => this.install(m, now - i * 86_400_000));
    for (const m of opts.registry) this.registry.set(nameKey(m.name), normalized(m));
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

function normalized(m: EmulatedModel): EmulatedModel {
  return { ...m, name: normalizeModelName(m.name), capabilities: [...m.capabilities] };
}
