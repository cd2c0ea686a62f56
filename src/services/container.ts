import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { GatewayDatabase } from './db/database.js';
import type { Config } from '../config.js';
import { CreditLedger } from './access/credits.js';
import { ActiveStreams } from './generation/active-streams.js';
import { GenerationService } from './generation/generation-service.js';
import { observeAll } from './generation/hooks.js';
import { PartialFlusher } from './generation/partial-flusher.js';
import { LocalOllamaSlots, type OllamaSlots, capacityOf } from './ollama/slots.js';
import { RedisOllamaSlots } from './ollama/redis-slots.js';
import { ChatService } from './generation/chat-service.js';
import { EmbeddingService } from './generation/embeddings/embedding-service.js';
import { ConnectionRegistry } from './platform/connections.js';
import { PubSubKeyEventBus } from './access/key-events.js';
import { KeyService } from './access/keys.js';
import { GatewayMetrics } from './platform/metrics.js';
import { type ModelServices, createModelServices } from './models/model-services.js';
import { type GatewayPubSub, createGatewayPubSub } from './platform/pubsub.js';
import { SessionService } from './sessions/session-service.js';
import { SettingsService } from './platform/settings.js';
import type { Logger } from './platform/logger.js';
import { OllamaPool } from './ollama/pool.js';
import { InstanceHeartbeat, LeaseStore } from './platform/leases.js';
import { ConcurrencyGate } from './access/limits/concurrency-gate.js';
import { KeyRateLimiter } from './access/rate-limit.js';
import type { RedisBackplane } from './platform/redis.js';
import { enforceRevocations } from './access/revocation.js';
import { UsageService } from './access/usage.js';
import { LiveGenerations } from './generation/live-generations.js';

/** Everything the resolvers may call, built once per server. */
export interface Services {
  config: Config;
  db: GatewayDatabase;
  log: Logger;
  keys: KeyService;
  /** The Ollama hosts (OLLAMA_HOST), with routing, health and failover. */
  pool: OllamaPool;
  /** This gateway process among others on the same database (heartbeat lease). */
  instance: InstanceHeartbeat;
  activeStreams: ActiveStreams;
  credits: CreditLedger;
  partials: PartialFlusher;
  generation: GenerationService;
  sessions: SessionService;
  chat: ChatService;
  /** Embeddings, paid, rate limited and logged like generations (GraphQL, /v1, /api/embed). */
  embeddings: EmbeddingService;
  /** Per-key rate limits (also the generation service's admission hook). */
  rateLimits: KeyRateLimiter;
  usage: UsageService;
  /** Open websockets and SSE responses per key, closed when the key is revoked. */
  connections: ConnectionRegistry;
  /** Typed pub/sub (model events, pull progress); in-process unless given a distributed event target. */
  pubsub: GatewayPubSub;
  /** Request slots per (Ollama host, model) (closed on shutdown). */
  slots: OllamaSlots;
  /** Redis connections when REDIS_URL is set (closed on shutdown). */
  redis?: RedisBackplane;
  /** Runtime settings: default system prompt, global inactivity threshold. */
  settings: SettingsService;
  /** Model catalogue and lifecycle: pulls, loads, unloads, idle reaper. */
  models: ModelServices;
  /** Prometheus metrics (served at /metrics). */
  metrics: GatewayMetrics;
  /** Running generations of this instance with phase and tokens/s (admin console). */
  live: LiveGenerations;
}

/**
 * INSTANCE_ID, else `<hostname>:<port>`: stable across restarts, so a restarted gateway settles
 * its own interrupted rows at once; two live processes cannot share a host and port. With port 0
 * (tests) a random id, whose rows other instances settle once its heartbeat expires.
 */
export function defaultInstanceId(config: { instanceId?: string; port: number }): string {
  if (config.instanceId) return config.instanceId;
  return config.port ? `${hostname()}:${config.port}`.slice(-64) : randomUUID();
}

export async function createServices(config: Config, db: GatewayDatabase, log: Logger): Promise<Services> {
  const pool = new OllamaPool(config.ollamaHosts, {
    timeouts: { connectMs: config.upstreamConnectTimeoutMs, stallMs: config.upstreamStallTimeoutMs, pullStallMs: config.pullStallTimeoutMs },
    healthCheckIntervalMs: config.ollamaHealthCheckIntervalMs,
    log,
  });
  const leases = new LeaseStore(db);
  const instance = new InstanceHeartbeat(defaultInstanceId(config), leases, config.instanceTtlMs, (err) => log.warn({ err }, 'instance heartbeat failed'));
  const activeStreams = new ActiveStreams();
  const live = new LiveGenerations(activeStreams);
  // With REDIS_URL, events and rate-limit windows are shared between gateway instances. Imported
  // only then: a single instance never loads ioredis (idle memory).
  const redis = config.redisUrl ? new (await import('./platform/redis.js')).RedisBackplane(config.redisUrl, log) : undefined;
  const rateLimits = new KeyRateLimiter(
    {
      requestsPerMinute: config.rateLimitRequestsPerMinute,
      tokensPerMinute: config.rateLimitTokensPerMinute,
      maxConcurrentStreams: config.maxConcurrentStreamsPerKey,
      windowSeconds: config.rateLimitWindowSeconds,
    },
    redis?.rateLimitStore(),
  );
  const pubsub = createGatewayPubSub({ eventTarget: redis?.eventTarget() });
  const settings = new SettingsService(db, { inactivityThresholdSeconds: config.inactivityThresholdSeconds });
  const models = createModelServices({ config, db, pool, pubsub, settings, log, leases, instanceId: instance.id });
  const credits = new CreditLedger();
  const metrics = new GatewayMetrics();
  metrics.watch({ activeStreams: () => activeStreams.size, loadedModels: (signal) => models.fleet.loaded(signal) });
  const partials = new PartialFlusher(db, log, config.partialFlushMs);
  // Ollama's capacity per (host, model); with REDIS_URL shared by every instance, so N gateways never oversubscribe a host.
  const capacity = capacityOf(config.ollamaHosts, config.ollamaNumParallel);
  const slots: OllamaSlots = redis ? new RedisOllamaSlots(redis.publisher, capacity, config.instanceTtlMs, log) : new LocalOllamaSlots(capacity);
  const imageLimits = {
    maxImages: config.maxImagesPerMessage,
    maxImagesPerRequest: config.limits.maxImagesPerRequest,
    maxBytes: config.maxImageBytes,
    timeoutMs: config.imageFetchTimeoutMs,
    allowPrivate: config.imageUrlAllowPrivate,
  };
  const rateGate = new ConcurrencyGate(config.limits.maxConcurrentStreamsPerIp);
  const generation = new GenerationService({
    images: imageLimits,
    capabilities: (name) => models.fleet.capabilitiesOf(name),
    defaultSystemPrompt: () => settings.getDefaultSystemPrompt(),
    models: models.directory,
    db,
    pool,
    instanceId: instance.id,
    credits,
    partials,
    active: activeStreams,
    log,
    requestCost: config.requestCost,
    defaultMaxTokens: config.defaultMaxTokens,
    maxPromptChars: config.limits.maxPromptChars,
    upstreamRetryRounds: config.limits.upstreamRetryRounds,
    upstreamRetryDelayMs: config.limits.upstreamRetryDelayMs,
    slots,
    defaultKeepAlive: config.ollamaKeepAlive,
    admission: rateLimits,
    gate: rateGate,
    // Prometheus metrics and the admin console's live view follow every run.
    observer: observeAll(metrics, live),
  });
  // Embeddings share the generations' limits: the key's rate limits, the per-address gate, Ollama's slots.
  const { requestCost, ollamaKeepAlive: defaultKeepAlive, limits } = config;
  const embeddings = new EmbeddingService({ capabilities: (name) => models.fleet.capabilitiesOf(name), db, pool, credits, log, slots, active: activeStreams, models: models.directory, admission: rateLimits, gate: rateGate, instanceId: instance.id, requestCost, defaultKeepAlive, maxInputs: limits.maxEmbedInputs, maxChars: limits.maxPromptChars });
  const sessions = new SessionService(
    db,
    () => settings.getDefaultSystemPrompt(),
    async (model) => (await models.catalog.find(model))?.entry.systemPrompt ?? null,
  );
  const chat = new ChatService(generation, sessions, imageLimits);
  // Revocations go through the pub/sub (in-process, or Redis with REDIS_URL) so every instance acts on them.
  const keyEvents = new PubSubKeyEventBus(pubsub, (err) => log.error({ err }, 'key event handler failed'));
  const connections = new ConnectionRegistry();
  enforceRevocations({ events: keyEvents, activeStreams, connections, log });
  const keys = new KeyService(db, config.defaultCredits, keyEvents);
  return { config, db, log, redis, slots, keys, pool, instance, activeStreams, credits, partials, generation, embeddings, sessions, chat, rateLimits, usage: new UsageService(db), connections, pubsub, settings, models, metrics, live };
}
