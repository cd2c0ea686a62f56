import type { DataSource } from 'typeorm';
import type { Config } from '../../config.js';
import type { ModelEntry } from '../../entities/model-entry.js';
import { GpuProbe } from '../gpu.js';
import type { Logger } from '../logger.js';
import type { OllamaUpstream } from '../ollama/upstream.js';
import type { GatewayPubSub } from '../pubsub.js';
import type { SettingsService } from '../settings.js';
import { ModelCatalog } from './catalog.js';
import { type CatalogImportResult, importCatalogCsv } from './csv-import.js';
import { CatalogModelDirectory } from './directory.js';
import type { ModelEvent } from './events.js';
import { IdleReaper } from './idle-reaper.js';
import { OllamaInventory } from './inventory.js';
import { ModelLifecycle } from './lifecycle.js';
import { checkThreshold } from './limits.js';
import { canonicalModelName } from './names.js';
import { ModelOverview } from './overview.js';
import { PullManager } from './pull-manager.js';

/** The model-lifecycle services, one job each. */
export interface ModelServices {
  catalog: ModelCatalog;
  inventory: OllamaInventory;
  overview: ModelOverview;
  lifecycle: ModelLifecycle;
  pulls: PullManager;
  reaper: IdleReaper;
  /** The generation path's view of the catalogue (aliases, prices, keep_alive, busy tracking). */
  directory: CatalogModelDirectory;
  gpu: GpuProbe;
  importCsv(text: string): Promise<CatalogImportResult>;
  /** Sets a model's own inactivity threshold; MODEL_NOT_FOUND unless it is catalogued or installed. */
  setModelThreshold(requested: string, seconds: number | null): Promise<ModelEntry>;
  /** Seeds DEFAULT_MODEL and starts the idle reaper. */
  start(): Promise<void>;
  /** Stops the reaper (storing activity) and aborts running pulls. */
  stop(): Promise<void>;
}

export function createModelServices(deps: {
  config: Config;
  db: DataSource;
  upstream: OllamaUpstream;
  pubsub: GatewayPubSub;
  settings: SettingsService;
  log: Logger;
}): ModelServices {
  const { config, db, upstream, pubsub, settings } = deps;
  const log = deps.log.child({ component: 'models' });
  const publish = (event: ModelEvent) => pubsub.publish('models:event', event);
  const catalog = new ModelCatalog(db);
  const inventory = new OllamaInventory(upstream);
  const gpu = new GpuProbe({
    configuredVramBytes: config.gpuVramBytes,
    nvidiaSmiPath: config.nvidiaSmiPath,
    usedByModels: () => inventory.vramInUse(),
  });
  let lifecycle: ModelLifecycle | undefined;
  const reaper = new IdleReaper({
    settings,
    catalog,
    inventory,
    publish,
    log,
    intervalMs: config.idleCheckIntervalMs,
    unloadIdle: (name, key) => lifecycle?.unloadIdle(name, key) ?? Promise.resolve(false),
  });
  lifecycle = new ModelLifecycle({ upstream, inventory, catalog, settings, gpu, reaper, publish, log });
  const overview = new ModelOverview({ catalog, inventory, settings, reaper });
  const pulls = new PullManager({ upstream, inventory, catalog, pubsub, publish, log });

  return {
    catalog,
    inventory,
    overview,
    lifecycle,
    pulls,
    reaper,
    directory: new CatalogModelDirectory({ catalog, settings, inventory, reaper }),
    gpu,
    importCsv: (text) => importCatalogCsv(db, text),
    async setModelThreshold(requested, seconds) {
      checkThreshold(seconds);
      await overview.get(requested);
      return catalog.setThreshold(requested, seconds);
    },
    async start() {
      if (config.defaultModel && !(await catalog.defaultEntry())) {
        if (canonicalModelName(config.defaultModel)) await catalog.setDefault(config.defaultModel);
        else log.warn({ model: config.defaultModel }, 'DEFAULT_MODEL is not a valid model name; ignored');
      }
      await reaper.start();
    },
    async stop() {
      pulls.stop();
      await reaper.stop();
    },
  };
}
