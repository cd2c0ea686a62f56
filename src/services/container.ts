import type { DataSource } from 'typeorm';
import type { Config } from '../config.js';
import { CreditLedger } from './credits.js';
import { ActiveStreams } from './generation/active-streams.js';
import { GenerationService } from './generation/generation-service.js';
import { KeyService } from './keys.js';
import type { Logger } from './logger.js';
import { OllamaUpstream } from './ollama/upstream.js';

/** Everything the resolvers may call, built once per server. */
export interface Services {
  config: Config;
  db: DataSource;
  log: Logger;
  keys: KeyService;
  upstream: OllamaUpstream;
  activeStreams: ActiveStreams;
  generation: GenerationService;
}

export function createServices(config: Config, db: DataSource, log: Logger): Services {
  const upstream = new OllamaUpstream(config.ollamaHosts[0], {
    connectMs: config.upstreamConnectTimeoutMs,
    stallMs: config.upstreamStallTimeoutMs,
  });
  const activeStreams = new ActiveStreams();
  const generation = new GenerationService({
    db,
    upstream,
    credits: new CreditLedger(),
    active: activeStreams,
    log,
    requestCost: config.requestCost,
    defaultMaxTokens: config.defaultMaxTokens,
  });
  return { config, db, log, keys: new KeyService(db, config.defaultCredits), upstream, activeStreams, generation };
}
