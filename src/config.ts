import { z } from 'zod';

/** Typed gateway configuration, read from the environment once at start-up. */
export interface Config {
  port: number;
  host: string;
  /** PostgreSQL connection string; when unset the embedded SQLite file at `dbPath` is used. */
  databaseUrl?: string;
  dbPath: string;
  /** One or more Ollama base URLs: the host pool (routing, health checks, failover). */
  ollamaHosts: string[];
  /** Health checks of the Ollama hosts this often (with more than one host); 0 = off. */
  ollamaHealthCheckIntervalMs: number;
  /** This gateway process among several on one database (crash recovery, leases); random per start when unset. */
  instanceId?: string;
  /** How long an instance counts as alive after its last heartbeat (renewed every third of it). */
  instanceTtlMs: number;
  adminApiKey?: string;
  defaultCredits: number;
  requestCost: number;
  inactivityThresholdSeconds?: number;
  defaultModel?: string;
  /** GPU_VRAM_BYTES: total VRAM per Ollama host (one value for all, or one per host in OLLAMA_HOST order). */
  gpuVramBytes?: number[];
  /** nvidia-smi to run for the VRAM probe; null when disabled (NVIDIA_SMI_PATH=off). */
  nvidiaSmiPath: string | null;
  /** How often the idle reaper looks for models idle past their inactivity threshold. */
  idleCheckIntervalMs: number;
  redisUrl?: string;
  corsOrigins: string[];
  maxBodyBytes: number;
  maxWsPayloadBytes: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Upper bound on reply length when a request gives no maxTokens (used to size credit reservations). */
  defaultMaxTokens: number;
  /** Time allowed to receive response headers from Ollama (covers model loading). */
  upstreamConnectTimeoutMs: number;
  /** Longest silence tolerated between two chunks of a running stream. */
  upstreamStallTimeoutMs: number;
  /** Time given to running streams to finish on SIGTERM before they are cancelled. */
  shutdownGraceMs: number;
  /** OLLAMA_NUM_PARALLEL of each host (one value for all, or one per host): requests per (host, model) sent at once. */
  ollamaNumParallel: number[];
  /** keep_alive sent when no inactivity threshold applies: seconds, or a Go duration string ("5m", "-1" pins). */
  ollamaKeepAlive: number | string;
  /** Longest silence tolerated while a pull runs (Ollama is quiet while it verifies a large download). */
  pullStallTimeoutMs: number;
  /** How often partial answers of running streams are saved (crash safety); 0 = never. */
  partialFlushMs: number;
  /** Largest image accepted (decoded bytes), whether base64, upload or URL. */
  maxImageBytes: number;
  maxImagesPerMessage: number;
  imageFetchTimeoutMs: number;
  /** Let image URLs reach private, loopback and link-local addresses (SSRF guard off). */
  imageUrlAllowPrivate: boolean;
  /** Bearer token required to read /metrics; unset = /metrics is open. */
  metricsToken?: string;
  /** Default per-key limits on generation requests (a key's own limits override them); 0 = unlimited. */
  rateLimitRequestsPerMinute: number;
  rateLimitTokensPerMinute: number;
  maxConcurrentStreamsPerKey: number;
  /** Length of the rate-limit window in seconds; the "per minute" limits apply per window. */
  rateLimitWindowSeconds: number;
  /** Hardening limits (see src/services/limits/); 0 turns a limit off. */
  limits: HardeningLimits;
}

/** Limits against hostile or broken clients and a flaky upstream; 0 turns a limit off. */
export interface HardeningLimits {
  /** graphql-armor: query depth, cost, aliases, directives and lexer tokens per document. */
  graphqlMaxDepth: number;
  graphqlMaxCost: number;
  graphqlMaxAliases: number;
  graphqlMaxDirectives: number;
  graphqlMaxTokens: number;
  /** Characters of prompt, system prompt and chat messages in one generation request. */
  maxPromptChars: number;
  /** Time a websocket has to send connection_init after opening. */
  wsConnectionInitTimeoutMs: number;
  /** Interval of websocket pings; a peer that has not answered by the next ping is dropped. */
  wsKeepAliveMs: number;
  maxSocketsPerIp: number;
  maxSocketsPerKey: number;
  maxConcurrentStreamsPerIp: number;
  /** Failed authentications per IP and window before the IP is refused (RATE_LIMITED) until the window ends. */
  authFailureLimit: number;
  authFailureWindowSeconds: number;
  /** Output queued for one client (websocket or HTTP response) beyond which it counts as not reading. */
  maxClientBufferedBytes: number;
  /** Time queued output may wait without draining before the client counts as not reading. */
  slowClientTimeoutMs: number;
  /** Retries of a generation whose connection to Ollama failed before any chunk arrived. */
  upstreamRetries: number;
  upstreamRetryDelayMs: number;
  /** Take the client address from the last X-Forwarded-For entry (behind one reverse proxy). */
  trustProxy: boolean;
  // Security round 2 (docs/security.md).
  /** Images in one generation request, over all its messages and sources; counted before any download. */
  maxImagesPerRequest: number;
  /** Open TCP connections per client address (HTTP and websockets); more are closed at accept. */
  maxConnectionsPerIp: number;
  /** node:http: time to receive a request's headers, and its whole request (headers and body). */
  httpHeadersTimeoutMs: number;
  httpRequestTimeoutMs: number;
  /** node:http: how long an idle keep-alive connection stays open. */
  httpKeepAliveTimeoutMs: number;
  /** Operations running at once on one websocket (subscriptions, queries, mutations). */
  maxSubscriptionsPerSocket: number;
  /** Texts in one embeddings request (GraphQL `embed`, `/v1/embeddings`, `/api/embed`). */
  maxEmbedInputs: number;
}

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(emptyToUndefined, schema.optional());
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter(Boolean));
const httpUrl = z.url({ protocol: /^https?$/ });
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const envSchema = z.object({
  PORT: z.preprocess(emptyToUndefined, int(0, 65535).default(4000)),
  HOST: z.preprocess(emptyToUndefined, z.string().default('0.0.0.0')),
  DATABASE_URL: optional(z.url({ protocol: /^postgres(ql)?$/ })),
  DB_PATH: z.preprocess(emptyToUndefined, z.string().default('./data/gateway.sqlite')),
  OLLAMA_HOST: z.preprocess(
    emptyToUndefined,
    list.pipe(z.array(httpUrl).min(1, 'needs at least one URL')).default(['http://127.0.0.1:11434']),
  ),
  ADMIN_API_KEY: optional(z.string().min(24, 'must be at least 24 characters')),
  DEFAULT_CREDITS: z.preprocess(emptyToUndefined, int(0).default(500)),
  REQUEST_COST: z.preprocess(emptyToUndefined, int(0).default(1)),
  INACTIVITY_THRESHOLD_SECONDS: optional(int(0)),
  DEFAULT_MODEL: optional(z.string()),
  GPU_VRAM_BYTES: optional(list.pipe(z.array(z.string().regex(/^\d+$/, 'must be whole numbers of bytes').transform(Number).pipe(z.number().int().min(1))).min(1))),
  OLLAMA_HEALTH_CHECK_INTERVAL_MS: z.preprocess(emptyToUndefined, int(0, 3_600_000).default(5000)),
  INSTANCE_ID: optional(z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'up to 64 letters, digits, dots, colons, underscores or dashes')),
  INSTANCE_TTL_MS: z.preprocess(emptyToUndefined, int(1000, 3_600_000).default(15_000)),
  NVIDIA_SMI_PATH: z.preprocess(emptyToUndefined, z.string().default('nvidia-smi')),
  IDLE_CHECK_INTERVAL_MS: z.preprocess(emptyToUndefined, int(100, 3_600_000).default(5000)),
  REDIS_URL: optional(z.url({ protocol: /^rediss?$/ })),
  CORS_ORIGINS: z.preprocess(emptyToUndefined, list.default([])),
  MAX_BODY_BYTES: z.preprocess(emptyToUndefined, int(1024).default(16 * 1024 * 1024)),
  MAX_WS_PAYLOAD_BYTES: z.preprocess(emptyToUndefined, int(1024).default(16 * 1024 * 1024)),
  LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  DEFAULT_MAX_TOKENS: z.preprocess(emptyToUndefined, int(1, 1_000_000).default(2048)),
  UPSTREAM_CONNECT_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(1).default(120_000)),
  UPSTREAM_STALL_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(1).default(60_000)),
  SHUTDOWN_GRACE_MS: z.preprocess(emptyToUndefined, int(0).default(10_000)),
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
  PULL_STALL_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(1).default(600_000)),
  PARTIAL_FLUSH_MS: z.preprocess(emptyToUndefined, int(0, 3_600_000).default(1000)),
  RATE_LIMIT_REQUESTS_PER_MINUTE: z.preprocess(emptyToUndefined, int(0, 1_000_000_000).default(120)),
  RATE_LIMIT_TOKENS_PER_MINUTE: z.preprocess(emptyToUndefined, int(0, 1_000_000_000).default(200_000)),
  MAX_CONCURRENT_STREAMS_PER_KEY: z.preprocess(emptyToUndefined, int(0, 1_000_000_000).default(8)),
  RATE_LIMIT_WINDOW_SECONDS: z.preprocess(emptyToUndefined, int(1, 3600).default(60)),
  MAX_IMAGE_BYTES: z.preprocess(emptyToUndefined, int(1024).default(10 * 1024 * 1024)),
  MAX_IMAGES_PER_MESSAGE: z.preprocess(emptyToUndefined, int(0, 100).default(8)),
  IMAGE_FETCH_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(1).default(10_000)),
  IMAGE_URL_ALLOW_PRIVATE: z.preprocess(emptyToUndefined, bool.default(false)),
  METRICS_TOKEN: optional(z.string().min(16, 'must be at least 16 characters')),
  GRAPHQL_MAX_DEPTH: z.preprocess(emptyToUndefined, int(0, 1000).default(10)),
  GRAPHQL_MAX_COST: z.preprocess(emptyToUndefined, int(0, 100_000_000).default(10_000)),
  GRAPHQL_MAX_ALIASES: z.preprocess(emptyToUndefined, int(0, 100_000).default(15)),
  GRAPHQL_MAX_DIRECTIVES: z.preprocess(emptyToUndefined, int(0, 100_000).default(50)),
  GRAPHQL_MAX_TOKENS: z.preprocess(emptyToUndefined, int(0, 10_000_000).default(1000)),
  MAX_PROMPT_CHARS: z.preprocess(emptyToUndefined, int(1, 100_000_000).default(1_000_000)),
  WS_CONNECTION_INIT_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(100, 600_000).default(5000)),
  WS_KEEPALIVE_MS: z.preprocess(emptyToUndefined, int(0, 3_600_000).default(12_000)),
  MAX_SOCKETS_PER_IP: z.preprocess(emptyToUndefined, int(0, 1_000_000).default(256)),
  MAX_SOCKETS_PER_KEY: z.preprocess(emptyToUndefined, int(0, 1_000_000).default(64)),
  MAX_CONCURRENT_STREAMS_PER_IP: z.preprocess(emptyToUndefined, int(0, 1_000_000).default(32)),
  AUTH_FAILURE_LIMIT: z.preprocess(emptyToUndefined, int(0, 1_000_000).default(20)),
  AUTH_FAILURE_WINDOW_SECONDS: z.preprocess(emptyToUndefined, int(1, 86_400).default(60)),
  MAX_CLIENT_BUFFERED_BYTES: z.preprocess(emptyToUndefined, int(1024).default(4 * 1024 * 1024)),
  SLOW_CLIENT_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(100, 3_600_000).default(15_000)),
  UPSTREAM_RETRIES: z.preprocess(emptyToUndefined, int(0, 5).default(1)),
  UPSTREAM_RETRY_DELAY_MS: z.preprocess(emptyToUndefined, int(0, 60_000).default(250)),
  TRUST_PROXY: z.preprocess(emptyToUndefined, bool.default(false)),
  // Security round 2 (docs/security.md).
  MAX_IMAGES_PER_REQUEST: z.preprocess(emptyToUndefined, int(0, 1000).default(16)),
  MAX_CONNECTIONS_PER_IP: z.preprocess(emptyToUndefined, int(0, 1_000_000).default(512)),
  HTTP_HEADERS_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(100, 600_000).default(10_000)),
  HTTP_REQUEST_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(100, 3_600_000).default(60_000)),
  HTTP_KEEPALIVE_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(100, 600_000).default(5000)),
  MAX_SUBSCRIPTIONS_PER_SOCKET: z.preprocess(emptyToUndefined, int(0, 1_000_000).default(100)),
  MAX_EMBED_INPUTS: z.preprocess(emptyToUndefined, int(1, 100_000).default(256)),
});

/** Thrown when the environment holds a bad value; the message names every offending variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses and validates configuration; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? 'environment');
      const value = env[variable];
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
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dbPath: e.DB_PATH,
    ollamaHosts: e.OLLAMA_HOST,
    ollamaHealthCheckIntervalMs: e.OLLAMA_HEALTH_CHECK_INTERVAL_MS,
    instanceId: e.INSTANCE_ID,
    instanceTtlMs: e.INSTANCE_TTL_MS,
    adminApiKey: e.ADMIN_API_KEY,
    defaultCredits: e.DEFAULT_CREDITS,
    requestCost: e.REQUEST_COST,
    inactivityThresholdSeconds: e.INACTIVITY_THRESHOLD_SECONDS,
    defaultModel: e.DEFAULT_MODEL,
    gpuVramBytes: e.GPU_VRAM_BYTES,
    nvidiaSmiPath: /^(off|none|false|0)$/i.test(e.NVIDIA_SMI_PATH) ? null : e.NVIDIA_SMI_PATH,
    idleCheckIntervalMs: e.IDLE_CHECK_INTERVAL_MS,
    redisUrl: e.REDIS_URL,
    corsOrigins: e.CORS_ORIGINS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxWsPayloadBytes: e.MAX_WS_PAYLOAD_BYTES,
    logLevel: e.LOG_LEVEL,
    defaultMaxTokens: e.DEFAULT_MAX_TOKENS,
    upstreamConnectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
    upstreamStallTimeoutMs: e.UPSTREAM_STALL_TIMEOUT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    ollamaNumParallel: e.OLLAMA_NUM_PARALLEL,
    ollamaKeepAlive: e.OLLAMA_KEEP_ALIVE,
    pullStallTimeoutMs: e.PULL_STALL_TIMEOUT_MS,
    partialFlushMs: e.PARTIAL_FLUSH_MS,
    rateLimitRequestsPerMinute: e.RATE_LIMIT_REQUESTS_PER_MINUTE,
    rateLimitTokensPerMinute: e.RATE_LIMIT_TOKENS_PER_MINUTE,
    maxConcurrentStreamsPerKey: e.MAX_CONCURRENT_STREAMS_PER_KEY,
    rateLimitWindowSeconds: e.RATE_LIMIT_WINDOW_SECONDS,
    maxImageBytes: e.MAX_IMAGE_BYTES,
    maxImagesPerMessage: e.MAX_IMAGES_PER_MESSAGE,
    imageFetchTimeoutMs: e.IMAGE_FETCH_TIMEOUT_MS,
    imageUrlAllowPrivate: e.IMAGE_URL_ALLOW_PRIVATE,
    metricsToken: e.METRICS_TOKEN,
    limits: {
      graphqlMaxDepth: e.GRAPHQL_MAX_DEPTH,
      graphqlMaxCost: e.GRAPHQL_MAX_COST,
      graphqlMaxAliases: e.GRAPHQL_MAX_ALIASES,
      graphqlMaxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      graphqlMaxTokens: e.GRAPHQL_MAX_TOKENS,
      maxPromptChars: e.MAX_PROMPT_CHARS,
      wsConnectionInitTimeoutMs: e.WS_CONNECTION_INIT_TIMEOUT_MS,
      wsKeepAliveMs: e.WS_KEEPALIVE_MS,
      maxSocketsPerIp: e.MAX_SOCKETS_PER_IP,
      maxSocketsPerKey: e.MAX_SOCKETS_PER_KEY,
      maxConcurrentStreamsPerIp: e.MAX_CONCURRENT_STREAMS_PER_IP,
      authFailureLimit: e.AUTH_FAILURE_LIMIT,
      authFailureWindowSeconds: e.AUTH_FAILURE_WINDOW_SECONDS,
      maxClientBufferedBytes: e.MAX_CLIENT_BUFFERED_BYTES,
      slowClientTimeoutMs: e.SLOW_CLIENT_TIMEOUT_MS,
      upstreamRetries: e.UPSTREAM_RETRIES,
      upstreamRetryDelayMs: e.UPSTREAM_RETRY_DELAY_MS,
      trustProxy: e.TRUST_PROXY,
      maxImagesPerRequest: e.MAX_IMAGES_PER_REQUEST,
      maxConnectionsPerIp: e.MAX_CONNECTIONS_PER_IP,
      httpHeadersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      httpRequestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      httpKeepAliveTimeoutMs: e.HTTP_KEEPALIVE_TIMEOUT_MS,
      maxSubscriptionsPerSocket: e.MAX_SUBSCRIPTIONS_PER_SOCKET,
      maxEmbedInputs: e.MAX_EMBED_INPUTS,
    },
  };
}
