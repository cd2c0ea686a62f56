import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GenerationEnd, GenerationObserver, GenerationProbe } from '../generation/hooks.js';
import { canonicalModelName } from '../ollama/model-names.js';

/** Seconds; covers a warm model's first token up to a cold load of a large one. */
const LATENCY_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const LOADED_TIMEOUT_MS = 2000;

/** Label for a model that never answered: requested names are client input, so they are not labels until Ollama proves them real. */
export const UNANSWERED_MODEL = 'unanswered';

export type MetricsApi = 'graphql' | 'openai' | 'ollama';

/** What Ollama has loaded, for the models-loaded gauges. */
/** Loaded models keyed by anything unique, each with its canonical name and Ollama host. */
export type LoadedModelsSource = (signal: AbortSignal) => Promise<Map<string, { key: string; host: string; vramBytes: number }>>;

export interface MetricsSources {
  activeStreams?: () => number;
  openWebsockets?: () => number;
  loadedModels?: LoadedModelsSource;
}

/**
 * The gateway's Prometheus metrics, on a registry of their own (one per app, so several gateways
 * can run in one process); yoga's prometheus plugin adds the GraphQL metrics to the same registry.
 * Labels are bounded: a model label appears only once Ollama answered for that model, error codes
 * come from the catalogue, and nothing is labelled by key, prompt or request.
 */
export class GatewayMetrics implements GenerationObserver {
  readonly registry = new Registry();
  private readonly sources: MetricsSources = {};
  /** The `/api/ps` call of the scrape in progress, shared by the gauges that read it. */
  private loaded?: Promise<Map<string, { key: string; host: string; vramBytes: number }> | null>;

  private readonly tokens = new Counter({
    name: 'llm_gateway_tokens_streamed_total',
    help: 'Tokens streamed to clients, by model.',
    labelNames: ['model'],
    registers: [this.registry],
  });
  private readonly generations = new Counter({
    name: 'llm_gateway_generations_total',
    help: 'Generations that reached the model stage, by model and final status (COMPLETE, CANCELLED, ERROR).',
    labelNames: ['model', 'status'],
    registers: [this.registry],
  });
  private readonly credits = new Counter({
    name: 'llm_gateway_credits_charged_total',
    help: 'Credits charged for generations, by model.',
    labelNames: ['model'],
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'llm_gateway_errors_total',
    help: 'Errors returned to clients, by error code and API (graphql, openai).',
    labelNames: ['code', 'api'],
    registers: [this.registry],
  });
  private readonly firstToken = new Histogram({
    name: 'llm_gateway_time_to_first_token_seconds',
    help: 'Time from accepting a generation to its first token (queueing and model loading included), by model.',
    labelNames: ['model'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly upstreamLatency = new Histogram({
    name: 'llm_gateway_upstream_latency_seconds',
    help: 'Time from sending a generation to Ollama to its first chunk (model loading included), by model.',
    labelNames: ['model'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const sources = this.sources;
    new Gauge({
      name: 'llm_gateway_active_streams',
      help: 'Generations running now (streamed or not).',
      registers: [this.registry],
      collect() {
        this.set(sources.activeStreams?.() ?? 0);
      },
    });
    new Gauge({
      name: 'llm_gateway_open_websockets',
      help: 'Open graphql-ws websockets.',
      registers: [this.registry],
      collect() {
        this.set(sources.openWebsockets?.() ?? 0);
      },
    });
    const loadedModels = () => this.loadedModels();
    new Gauge({
      name: 'llm_gateway_upstream_up',
      help: '1 when Ollama answered /api/ps at this scrape, else 0.',
      registers: [this.registry],
      async collect() {
        this.set((await loadedModels()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'llm_gateway_models_loaded',
      help: 'Models Ollama has loaded in memory (/api/ps at scrape time); NaN when Ollama did not answer.',
      registers: [this.registry],
      async collect() {
        const models = await loadedModels();
        this.set(models ? models.size : Number.NaN);
      },
    });
    new Gauge({
      name: 'llm_gateway_model_vram_bytes',
      help: 'VRAM used by each loaded model on each Ollama host (/api/ps size_vram at scrape time).',
      labelNames: ['model', 'host'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const m of (await loadedModels())?.values() ?? []) this.set({ model: m.key, host: m.host }, m.vramBytes);
      },
    });
  }

  /** Connects the gauges read at scrape time (the server knows its sockets only once they exist). */
  watch(sources: MetricsSources): void {
    Object.assign(this.sources, sources);
  }

  /** Counts an error returned to a client (`code` from the error catalogue). */
  recordError(code: string, api: MetricsApi): void {
    this.errors.inc({ code, api });
  }

  begin(requested: string): GenerationProbe {
    const name = canonicalModelName(requested) ?? requested.trim().toLowerCase();
    let model = UNANSWERED_MODEL;
    let tokens: Counter.Internal | undefined;
    return {
      upstreamAnswered: (ms) => {
        model = name;
        this.upstreamLatency.observe({ model }, ms / 1000);
      },
      firstToken: (ms) => this.firstToken.observe({ model }, ms / 1000),
      tokens: (count) => (tokens ??= this.tokens.labels({ model })).inc(count),
      end: (outcome: GenerationEnd) => {
        this.generations.inc({ model, status: outcome.status });
        if (outcome.creditsCharged > 0) this.credits.inc({ model }, outcome.creditsCharged);
      },
    };
  }

  /** `/api/ps` once per scrape (the gauges collect concurrently and share the call); null when Ollama does not answer. */
  private loadedModels(): Promise<Map<string, { key: string; host: string; vramBytes: number }> | null> {
    const source = this.sources.loadedModels;
    if (!source) return Promise.resolve(null);
    this.loaded ??= source(AbortSignal.timeout(LOADED_TIMEOUT_MS))
      .catch(() => null)
      .finally(() => (this.loaded = undefined));
    return this.loaded;
  }
}
