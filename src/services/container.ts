import type { DataSource } from 'typeorm';
import type { Config } from '../config.js';
import { CreditLedger } from './credits.js';
import { ActiveStreams } from './generation/active-streams.js';
import { GenerationService } from './generation/generation-service.js';
import { ModelSlots } from './generation/model-slots.js';
import { ResidencyProbe } from './generation/residency.js';
import { ChatService } from './chat-service.js';
import { ConnectionRegistry } from './connections.js';
import { InProcessKeyEventBus } from './key-events.js';
import { KeyService } from './keys.js';
import { SessionService } from './sessions/session-service.js';
import { SettingsService } from './settings.js';
import type { Logger } from './logger.js';
import { OllamaUpstream } from './ollama/upstream.js';
import { KeyRateLimiter } from './rate-limit.js';
import { enforceRevocations } from './revocation.js';
import { UsageService } from './usage.js';

/** Everything the resolvers may call, built once per server. */
export interface Services {
  config: Config;
  db: DataSource;
  log: Logger;
  keys: KeyService;
  upstream: OllamaUpstream;
  activeStreams: ActiveStreams;
  generation: GenerationService;
  sessions: SessionService;
  chat: ChatService;
  /** Per-key rate limits (also the generation service's admission hook). */
  rateLimits: KeyRateLimiter;
  usage: UsageService;
  /** Open websockets and SSE responses per key, closed when the key is revoked. */
  connections: ConnectionRegistry;
}

export function createServices(config: Config, db: DataSource, log: Logger): Services {
  const upstream = new OllamaUpstream(config.ollamaHosts[0], {
    connectMs: config.upstreamConnectTimeoutMs,
    stallMs: config.upstreamStallTimeoutMs,
  });
  const activeStreams = new ActiveStreams();
  const rateLimits = new KeyRateLimiter({
    requestsPerMinute: config.rateLimitRequestsPerMinute,
    tokensPerMinute: config.rateLimitTokensPerMinute,
    maxConcurrentStreams: config.maxConcurrentStreamsPerKey,
    windowSeconds: config.rateLimitWindowSeconds,
  });
  const generation = new GenerationService({
    db,
    upstream,
    credits: new CreditLedger(),
    active: activeStreams,
    log,
    requestCost: config.requestCost,
    defaultMaxTokens: config.defaultMaxTokens,
    slots: new ModelSlots(config.maxConcurrentPerModel),
    residency: new ResidencyProbe(upstream),
    admission: rateLimits,
  });
  const sessions = new SessionService(db, () => new SettingsService(db, {}).getDefaultSystemPrompt());
  const chat = new ChatService(generation, sessions, {
    maxImages: config.maxImagesPerMessage,
    maxBytes: config.maxImageBytes,
    timeoutMs: config.imageFetchTimeoutMs,
    allowPrivate: config.imageUrlAllowPrivate,
  });
  // Revocations go through an event bus (in-process now, Redis later) so every instance acts on them.
  const keyEvents = new InProcessKeyEventBus();
  const connections = new ConnectionRegistry();
  enforceRevocations({ events: keyEvents, activeStreams, connections, log });
  const keys = new KeyService(db, config.defaultCredits, keyEvents);
  return { config, db, log, keys, upstream, activeStreams, generation, sessions, chat, rateLimits, usage: new UsageService(db), connections };
}
