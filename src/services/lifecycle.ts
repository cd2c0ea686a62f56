import type { Services } from './container.js';
import { OrphanSweeper } from './generation/recovery.js';

/** What the transport does at its two points in the stop order (see stopServices). */
export interface TransportShutdown {
  /** Stop accepting new connections; open ones keep running. */
  refuseNew(): void;
  /** Close every open socket and connection (which returns() their subscriptions). */
  closeConnections(): Promise<void>;
}

/** Services after startServices: what they need to stop in order. */
export interface StartedServices {
  /** Secret of the admin key created on this start, when one was created. */
  readonly bootstrapSecret?: string;
  /** Stops transport and services in order; idempotent (a second call waits for the first). */
  stop(transport: TransportShutdown): Promise<void>;
}

/**
 * Starts the background parts of the services in the order they depend on each other, before
 * anything is served: the bootstrap admin key, this instance's heartbeat, the sweep of what a
 * crash left STREAMING, the Ollama pool's health checks, the partial-answer flusher, the idle reapers.
 */
export async function startServices(services: Services): Promise<StartedServices> {
  const { config, log } = services;
  const bootstrapSecret = await services.keys.bootstrapAdmin(config.adminApiKey);
  // Announce this instance, settle what a crash left STREAMING (this instance's previous life,
  // or instances whose heartbeat stopped), then keep partial answers saved.
  await services.instance.start();
  const orphans = new OrphanSweeper({
    db: services.db,
    credits: services.credits,
    instanceId: services.instance.id,
    liveInstances: () => services.instance.liveInstances(),
    intervalMs: config.instanceTtlMs,
    onRecovered: (report) => log.warn(report, 'marked generations of a gateway instance that stopped as INTERRUPTED'),
    onError: (err) => log.warn({ err }, 'orphan sweep failed'),
  });
  const recovered = await orphans.start();
  if (recovered.generations) log.warn(recovered, 'marked generations interrupted by a previous crash as INTERRUPTED');
  services.pool.start();
  services.partials.start();
  // Idle reaper (timers unref'd): its first check unloads models left idle past their threshold while we were down.
  await services.models.start();

  let stopping: Promise<void> | undefined;
  const stop = async (transport: TransportShutdown) => {
    log.info('shutting down');
    transport.refuseNew();
    const cut = services.activeStreams.size;
    await services.activeStreams.drain(config.shutdownGraceMs);
    // Let the "shutting down" errors of cut streams reach their clients before sockets close.
    if (cut) await new Promise((r) => setTimeout(r, 100));
    await services.partials.stop();
    await transport.closeConnections();
    await services.models.stop(); // stops the idle reapers (storing activity) and aborts pulls
    services.pool.stop();
    await orphans.stop();
    await services.instance.stop();
    await services.slots.close();
    await services.redis?.close();
    await services.db.close();
    log.info('stopped');
  };
  return { bootstrapSecret, stop: (transport) => (stopping ??= stop(transport)) };
}
