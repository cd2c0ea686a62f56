import { createHash } from 'node:crypto';
import type { GatewayDatabase } from '../db/database.js';
import type { Config } from '../../config.js';
import type { ModelEntry } from '../../entities/model-entry.js';
import { GpuProbe } from './gpu.js';
import type { LeaseStore } from '../platform/leases.js';
import { onFirstUse } from '../platform/on-first-use.js';
import type { Logger } from '../platform/logger.js';
import type { OllamaHost, OllamaPool } from '../ollama/pool.js';
import type { GatewayPubSub } from '../platform/pubsub.js';
import type { SettingsService } from '../platform/settings.js';
import { ModelCatalog } from './catalog.js';
import type { CatalogImportResult } from './csv-import.js';
import { CatalogModelDirectory } from './directory.js';
import type { ModelEvent } from './events.js';
import { type HostModels, ModelFleet } from './fleet.js';
import { IdleReaper, LAST_ACTIVITY_SETTING } from './idle-reaper.js';
import { ModelLifecycle } from './lifecycle.js';
import { checkThreshold } from './limits.js';
import { canonicalModelName } from '../ollama/model-names.js';
import { ModelOverview } from './overview.js';
import { PullManager } from './pull-manager.js';
import { usageLogActivity } from './shared-activity.js';

const catalogCsv = onFirstUse(() => import('./csv-import.js'));

/** The model-lifecycle services, one job each. */
export interface ModelServices {
  catalog: ModelCatalog;
  overview: ModelOverview;
  /** Per-host services and the operations spanning hosts (load, unload, delete, change, pull). */
  fleet: ModelFleet;
  /** The generation path's view of the catalogue (aliases, prices, keep_alive, busy tracking). */
  directory: CatalogModelDirectory;
  importCsv(text: string): Promise<CatalogImportResult>;
  /** Sets a model's own inactivity threshold; MODEL_NOT_FOUND unless it is catalogued or installed. */
  setModelThreshold(requested: string, seconds: number | null): Promise<ModelEntry>;
  /** Seeds DEFAULT_MODEL and starts the idle reapers. */
  start(): Promise<void>;
  /** Stops the reapers (storing activity, giving up their leases) and aborts running pulls. */
  stop(): Promise<void>;
}

/** Short, stable tag of a host URL for setting keys and lease names (both have length limits). */
export const hostTag = (url: string): string => createHash('sha256').update(url).digest('hex').slice(0, 16);

export function createModelServices(deps: {
  config: Config;
  db: GatewayDatabase;
  pool: OllamaPool;
  pubsub: GatewayPubSub;
  settings: SettingsService;
  log: Logger;
  /** Leases and this instance's id: one idle reaper per host across gateway instances. */
  leases: LeaseStore;
  instanceId: string;
}): ModelServices {
  const { config, db, pool, pubsub, settings, leases, instanceId } = deps;
  const log = deps.log.child({ component: 'models' });
  const publish = (event: ModelEvent) => pubsub.publish('models:event', event);
  const catalog = new ModelCatalog(db);
  // A host's idle reaper holds its lease for three check intervals, renewed at every check.
  const leaseMs = Math.max(3 * config.idleCheckIntervalMs, 1000);

  const forHost = (host: OllamaHost, index: number): HostModels => {
    const inventory = host.inventory;
    const vram = config.gpuVramBytes?.length === 1 ? config.gpuVramBytes[0] : config.gpuVramBytes?.[index];
    const gpu = new GpuProbe({
      configuredVramBytes: vram,
      // nvidia-smi sees the GPUs of the machine the gateway runs on: counted for the first host only.
      nvidiaSmiPath: index === 0 ? config.nvidiaSmiPath : null,
      noProbeReason: index === 0 ? undefined : 'nvidia-smi only describes the first Ollama host; set GPU_VRAM_BYTES (one value per host) for the others.',
      usedByModels: () => inventory.vramInUse(),
    });
    const leaseName = `idle-reaper:${hostTag(host.url)}`;
    let lifecycle: ModelLifecycle | undefined;
    const reaper = new IdleReaper({
      host: host.url,
      settingKey: `${LAST_ACTIVITY_SETTING}:${hostTag(host.url)}`,
      lease: () => leases.acquire(leaseName, instanceId, leaseMs),
      releaseLease: () => leases.release(leaseName, instanceId),
      sharedActivity: usageLogActivity(db, host.url),
      settings,
      catalog,
      inventory,
      publish,
      log,
      intervalMs: config.idleCheckIntervalMs,
      unloadIdle: (name, key) => lifecycle?.unloadIdle(name, key) ?? Promise.resolve(false),
    });
    lifecycle = new ModelLifecycle({ host: host.url, upstream: host.upstream, inventory, catalog, settings, gpu, reaper, publish, log, defaultKeepAlive: config.ollamaKeepAlive });
    const pulls = new PullManager({ host: host.url, upstream: host.upstream, inventory, catalog, pubsub, publish, log });
    return { host, inventory, gpu, reaper, lifecycle, pulls };
  };
  const fleet = new ModelFleet(pool.hosts.map(forHost), pool, catalog, log);
  const overview = new ModelOverview({ catalog, fleet, settings });

  return {
    catalog,
    overview,
    fleet,
    directory: new CatalogModelDirectory({ catalog, settings, fleet }),
    // The CSV parser is imported on the first import, not at start (idle memory).
    importCsv: async (text) => (await catalogCsv()).importCatalogCsv(db, text),
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
      await Promise.all(fleet.hosts.map((h) => h.reaper.start()));
    },
    async stop() {
      for (const h of fleet.hosts) h.pulls.stop();
      await Promise.all(fleet.hosts.map((h) => h.reaper.stop()));
    },
  };
}
