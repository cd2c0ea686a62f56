import { z } from 'zod';

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
/** A variable: empty counts as unset (so `FOO=` takes the default). */
const env = <T extends z.ZodType>(schema: T) => z.preprocess(emptyToUndefined, schema);
const optional = <T extends z.ZodType>(schema: T) => env(schema.optional());
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter(Boolean));
const httpUrl = z.url({ protocol: /^https?$/ });
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const envSchema = z.object({
  PORT: env(int(0, 65535).default(4000)),
  HOST: env(z.string().default('0.0.0.0')),
  DATABASE_URL: optional(z.url({ protocol: /^postgres(ql)?$/ })),
  DB_PATH: env(z.string().default('./data/gateway.sqlite')),
  OLLAMA_HOST: z.preprocess(
    emptyToUndefined,
    list.pipe(z.array(httpUrl).min(1, 'needs at least one URL')).default(['http://127.0.0.1:11434']),
  ),
  ADMIN_API_KEY: optional(z.string().min(24, 'must be at least 24 characters')),
  DEFAULT_CREDITS: env(int(0).default(500)),
  REQUEST_COST: env(int(0).default(1)),
  INACTIVITY_THRESHOLD_SECONDS: optional(int(0)),
  DEFAULT_MODEL: optional(z.string()),
  GPU_VRAM_BYTES: optional(list.pipe(z.array(z.string().regex(/^\d+$/, 'must be whole numbers of bytes').transform(Number).pipe(z.number().int().min(1))).min(1))),
  OLLAMA_HEALTH_CHECK_INTERVAL_MS: env(int(0, 3_600_000).default(5000)),
  INSTANCE_ID: optional(z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'up to 64 letters, digits, dots, colons, underscores or dashes')),
  INSTANCE_TTL_MS: env(int(1000, 3_600_000).default(15_000)),
  NVIDIA_SMI_PATH: env(z.string().default('nvidia-smi')),
  IDLE_CHECK_INTERVAL_MS: env(int(100, 3_600_000).default(5000)),
  REDIS_URL: optional(z.url({ protocol: /^rediss?$/ })),
  CORS_ORIGINS: env(list.default([])),
  MAX_BODY_BYTES: env(int(1024).default(16 * 1024 * 1024)),
  MAX_WS_PAYLOAD_BYTES: env(int(1024).default(16 * 1024 * 1024)),
  LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  DEFAULT_MAX_TOKENS: env(int(1, 1_000_000).default(2048)),
  UPSTREAM_CONNECT_TIMEOUT_MS: env(int(1).default(120_000)),
  UPSTREAM_STALL_TIMEOUT_MS: env(int(1).default(60_000)),
  SHUTDOWN_GRACE_MS: env(int(0).default(10_000)),
  OLLAMA_NUM_PARALLEL: z.preprocess(
    emptyToUndefined,
    list.pipe(z.array(z.string().regex(/^\d+$/, 'must be whole numbers').transform(Number).pipe(z.number().int().min(1).max(1024))).min(1)).default([1]),
  ),
  OLLAMA_KEEP_ALIVE: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .trim()
      .regex(/^-?(\d+|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/, 'must be seconds ("300", "-1") or a Go duration ("5m", "1h30m")')
      .transform((v) => (/^-?\d+$/.test(v) ? Number(v) : v))
      .default('5m'),
  ),
  PULL_STALL_TIMEOUT_MS: env(int(1).default(600_000)),
  PARTIAL_FLUSH_MS: env(int(0, 3_600_000).default(1000)),
  RATE_LIMIT_REQUESTS_PER_MINUTE: env(int(0, 1_000_000_000).default(120)),
  RATE_LIMIT_TOKENS_PER_MINUTE: env(int(0, 1_000_000_000).default(200_000)),
  MAX_CONCURRENT_STREAMS_PER_KEY: env(int(0, 1_000_000_000).default(8)),
  RATE_LIMIT_WINDOW_SECONDS: env(int(1, 3600).default(60)),
  MAX_IMAGE_BYTES: env(int(1024).default(10 * 1024 * 1024)),
  MAX_IMAGES_PER_MESSAGE: env(int(0, 100).default(8)),
  IMAGE_FETCH_TIMEOUT_MS: env(int(1).default(10_000)),
  IMAGE_URL_ALLOW_PRIVATE: env(bool.default(false)),
  METRICS_TOKEN: optional(z.string().min(16, 'must be at least 16 characters')),
  GRAPHQL_MAX_DEPTH: env(int(0, 1000).default(10)),
  GRAPHQL_MAX_COST: env(int(0, 100_000_000).default(10_000)),
  GRAPHQL_MAX_ALIASES: env(int(0, 100_000).default(15)),
  GRAPHQL_MAX_DIRECTIVES: env(int(0, 100_000).default(50)),
  GRAPHQL_MAX_TOKENS: env(int(0, 10_000_000).default(1000)),
  MAX_PROMPT_CHARS: env(int(1, 100_000_000).default(1_000_000)),
  WS_CONNECTION_INIT_TIMEOUT_MS: env(int(100, 600_000).default(5000)),
  WS_KEEPALIVE_MS: env(int(0, 3_600_000).default(12_000)),
  MAX_SOCKETS_PER_IP: env(int(0, 1_000_000).default(256)),
  MAX_SOCKETS_PER_KEY: env(int(0, 1_000_000).default(64)),
  MAX_CONCURRENT_STREAMS_PER_IP: env(int(0, 1_000_000).default(32)),
  AUTH_FAILURE_LIMIT: env(int(0, 1_000_000).default(20)),
  AUTH_FAILURE_WINDOW_SECONDS: env(int(1, 86_400).default(60)),
  MAX_CLIENT_BUFFERED_BYTES: env(int(1024).default(4 * 1024 * 1024)),
  SLOW_CLIENT_TIMEOUT_MS: env(int(100, 3_600_000).default(15_000)),
  UPSTREAM_RETRIES: env(int(0, 5).default(1)),
  UPSTREAM_RETRY_DELAY_MS: env(int(0, 60_000).default(250)),
  TRUST_PROXY: env(bool.default(false)),
  // Security round 2 (docs/security.md).
  MAX_IMAGES_PER_REQUEST: env(int(0, 1000).default(16)),
  MAX_CONNECTIONS_PER_IP: env(int(0, 1_000_000).default(512)),
  HTTP_HEADERS_TIMEOUT_MS: env(int(100, 600_000).default(10_000)),
  HTTP_REQUEST_TIMEOUT_MS: env(int(100, 3_600_000).default(60_000)),
  HTTP_KEEPALIVE_TIMEOUT_MS: env(int(100, 600_000).default(5000)),
  MAX_SUBSCRIPTIONS_PER_SOCKET: env(int(0, 1_000_000).default(100)),
  MAX_EMBED_INPUTS: env(int(1, 100_000).default(256)),
});

/** Typed gateway configuration, read from the environment once at start-up (inferred from `toConfig`). */
export type Config = ReturnType<typeof toConfig>;
/** Limits against hostile or broken clients and a flaky upstream; 0 turns a limit off. */
export type HardeningLimits = Config['limits'];

/** Every environment variable the gateway reads (the documentation's configuration table lists exactly these). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

/** Thrown when the environment holds a bad value; the message names every offending variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses and validates configuration; throws ConfigError naming each bad variable. */
export function loadConfig(vars: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(vars);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? 'environment');
      const value = vars[variable];
      const shown = variable.includes('KEY') || variable.includes('URL') || variable.includes('TOKEN') ? '' : ` (got ${JSON.stringify(value)})`;
      return `${variable}: ${issue.message}${shown}`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  const hostKeys = e.OLLAMA_HOST.map((h) => h.replace(/\/+$/, '').toLowerCase());
  if (new Set(hostKeys).size !== hostKeys.length) throw new ConfigError('Invalid configuration:\n  OLLAMA_HOST: lists the same host twice');
  for (const [name, values] of [['GPU_VRAM_BYTES', e.GPU_VRAM_BYTES], ['OLLAMA_NUM_PARALLEL', e.OLLAMA_NUM_PARALLEL]] as const) {
    if (values && values.length > 1 && values.length !== e.OLLAMA_HOST.length) {
      throw new ConfigError(`Invalid configuration:\n  ${name}: give one value, or one per OLLAMA_HOST entry (${e.OLLAMA_HOST.length})`);
    }
  }
  return toConfig(e);
}

/** The typed configuration (its type is `Config`), from validated variables. */
function toConfig(e: z.infer<typeof envSchema>) {
  return {
    port: e.PORT,
    host: e.HOST,
    /** PostgreSQL connection string; when unset the embedded SQLite file at `dbPath` is used. */
    databaseUrl: e.DATABASE_URL,
    dbPath: e.DB_PATH,
    /** One or more Ollama base URLs: the host pool (routing, health checks, failover). */
    ollamaHosts: e.OLLAMA_HOST,
    /** Health checks of the Ollama hosts this often (with more than one host); 0 = off. */
    ollamaHealthCheckIntervalMs: e.OLLAMA_HEALTH_CHECK_INTERVAL_MS,
    /** This gateway process among several on one database (crash recovery, leases); random per start when unset. */
    instanceId: e.INSTANCE_ID,
    /** How long an instance counts as alive after its last heartbeat (renewed every third of it). */
    instanceTtlMs: e.INSTANCE_TTL_MS,
    adminApiKey: e.ADMIN_API_KEY,
    defaultCredits: e.DEFAULT_CREDITS,
    requestCost: e.REQUEST_COST,
    inactivityThresholdSeconds: e.INACTIVITY_THRESHOLD_SECONDS,
    defaultModel: e.DEFAULT_MODEL,
    /** GPU_VRAM_BYTES: total VRAM per Ollama host (one value for all, or one per host in OLLAMA_HOST order). */
    gpuVramBytes: e.GPU_VRAM_BYTES,
    /** nvidia-smi to run for the VRAM probe; null when disabled (NVIDIA_SMI_PATH=off). */
    nvidiaSmiPath: /^(off|none|false|0)$/i.test(e.NVIDIA_SMI_PATH) ? null : e.NVIDIA_SMI_PATH,
    /** How often the idle reaper looks for models idle past their inactivity threshold. */
    idleCheckIntervalMs: e.IDLE_CHECK_INTERVAL_MS,
    redisUrl: e.REDIS_URL,
    corsOrigins: e.CORS_ORIGINS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxWsPayloadBytes: e.MAX_WS_PAYLOAD_BYTES,
    logLevel: e.LOG_LEVEL,
    /** Upper bound on reply length when a request gives no maxTokens (used to size credit reservations). */
    defaultMaxTokens: e.DEFAULT_MAX_TOKENS,
    /** Time allowed to receive response headers from Ollama (covers model loading). */
    upstreamConnectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
    /** Longest silence tolerated between two chunks of a running stream. */
    upstreamStallTimeoutMs: e.UPSTREAM_STALL_TIMEOUT_MS,
    /** Time given to running streams to finish on SIGTERM before they are cancelled. */
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    /** OLLAMA_NUM_PARALLEL of each host (one value for all, or one per host): requests per (host, model) sent at once. */
    ollamaNumParallel: e.OLLAMA_NUM_PARALLEL,
    /** keep_alive sent when no inactivity threshold applies: seconds, or a Go duration string ("5m", "-1" pins). */
    ollamaKeepAlive: e.OLLAMA_KEEP_ALIVE,
    /** Longest silence tolerated while a pull runs (Ollama is quiet while it verifies a large download). */
    pullStallTimeoutMs: e.PULL_STALL_TIMEOUT_MS,
    /** How often partial answers of running streams are saved (crash safety); 0 = never. */
    partialFlushMs: e.PARTIAL_FLUSH_MS,
    /** Default per-key limits on generation requests (a key's own limits override them); 0 = unlimited. */
    rateLimitRequestsPerMinute: e.RATE_LIMIT_REQUESTS_PER_MINUTE,
    rateLimitTokensPerMinute: e.RATE_LIMIT_TOKENS_PER_MINUTE,
    maxConcurrentStreamsPerKey: e.MAX_CONCURRENT_STREAMS_PER_KEY,
    /** Length of the rate-limit window in seconds; the "per minute" limits apply per window. */
    rateLimitWindowSeconds: e.RATE_LIMIT_WINDOW_SECONDS,
    /** Largest image accepted (decoded bytes), whether base64, upload or URL. */
    maxImageBytes: e.MAX_IMAGE_BYTES,
    maxImagesPerMessage: e.MAX_IMAGES_PER_MESSAGE,
    imageFetchTimeoutMs: e.IMAGE_FETCH_TIMEOUT_MS,
    /** Let image URLs reach private, loopback and link-local addresses (SSRF guard off). */
    imageUrlAllowPrivate: e.IMAGE_URL_ALLOW_PRIVATE,
    /** Bearer token required to read /metrics; unset = /metrics is open. */
    metricsToken: e.METRICS_TOKEN,
    /** Hardening limits (see src/services/access/limits/); 0 turns a limit off. */
    limits: {
      /** graphql-armor: query depth, cost, aliases, directives and lexer tokens per document. */
      graphqlMaxDepth: e.GRAPHQL_MAX_DEPTH,
      graphqlMaxCost: e.GRAPHQL_MAX_COST,
      graphqlMaxAliases: e.GRAPHQL_MAX_ALIASES,
      graphqlMaxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      graphqlMaxTokens: e.GRAPHQL_MAX_TOKENS,
      /** Characters of prompt, system prompt and chat messages in one generation request. */
      maxPromptChars: e.MAX_PROMPT_CHARS,
      /** Time a websocket has to send connection_init after opening. */
      wsConnectionInitTimeoutMs: e.WS_CONNECTION_INIT_TIMEOUT_MS,
      /** Interval of websocket pings; a peer that has not answered by the next ping is dropped. */
      wsKeepAliveMs: e.WS_KEEPALIVE_MS,
      maxSocketsPerIp: e.MAX_SOCKETS_PER_IP,
      maxSocketsPerKey: e.MAX_SOCKETS_PER_KEY,
      maxConcurrentStreamsPerIp: e.MAX_CONCURRENT_STREAMS_PER_IP,
      /** Failed authentications per IP and window before the IP is refused (RATE_LIMITED) until the window ends. */
      authFailureLimit: e.AUTH_FAILURE_LIMIT,
      authFailureWindowSeconds: e.AUTH_FAILURE_WINDOW_SECONDS,
      /** Output queued for one client (websocket or HTTP response) beyond which it counts as not reading. */
      maxClientBufferedBytes: e.MAX_CLIENT_BUFFERED_BYTES,
      /** Time queued output may wait without draining before the client counts as not reading. */
      slowClientTimeoutMs: e.SLOW_CLIENT_TIMEOUT_MS,
      /** Further rounds over the Ollama hosts when a generation could not connect before any chunk arrived (UPSTREAM_RETRIES). */
      upstreamRetryRounds: e.UPSTREAM_RETRIES,
      upstreamRetryDelayMs: e.UPSTREAM_RETRY_DELAY_MS,
      /** Take the client address from the last X-Forwarded-For entry (behind one reverse proxy). */
      trustProxy: e.TRUST_PROXY,
      /** Images in one generation request, over all its messages and sources; counted before any download. */
      maxImagesPerRequest: e.MAX_IMAGES_PER_REQUEST,
      /** Open TCP connections per client address (HTTP and websockets); more are closed at accept. */
      maxConnectionsPerIp: e.MAX_CONNECTIONS_PER_IP,
      /** node:http: time to receive a request's headers, and its whole request (headers and body). */
      httpHeadersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      httpRequestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      /** node:http: how long an idle keep-alive connection stays open. */
      httpKeepAliveTimeoutMs: e.HTTP_KEEPALIVE_TIMEOUT_MS,
      /** Operations running at once on one websocket (subscriptions, queries, mutations). */
      maxSubscriptionsPerSocket: e.MAX_SUBSCRIPTIONS_PER_SOCKET,
      /** Texts in one embeddings request (GraphQL `embed`, `/v1/embeddings`, `/api/embed`). */
      maxEmbedInputs: e.MAX_EMBED_INPUTS,
    },
  };
}
