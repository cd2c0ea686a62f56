import { ErrorCode, GatewayError, badInput, isGatewayError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { OllamaInventory } from './inventory.js';
import { type UpstreamTimeouts, OllamaUpstream } from './upstream.js';

/** How long a host's answer of loaded (`/api/ps`) and installed (`/api/tags`) models is trusted for routing. */
const LOADED_TTL_MS = 1000;
const INSTALLED_TTL_MS = 5000;
const PROBE_TIMEOUT_MS = 2000;

/** What the gateway knows about one Ollama host. */
export interface OllamaHostStatus {
  url: string;
  /** False after a failed health check or a connection failure, until the next success. */
  healthy: boolean;
  /** Why the host counts as unhealthy. */
  error: string | null;
  /** When the host was last checked or last answered. */
  checkedAt: Date | null;
  /** Requests this gateway instance has open on the host now. */
  activeRequests: number;
}

/** One Ollama host of the pool: its client, its health and what it has loaded and installed. */
export class OllamaHost {
  readonly upstream: OllamaUpstream;
  private healthy = true;
  private error: string | null = null;
  private checkedAt: Date | null = null;
  private active = 0;
  /** What the host has installed and loaded (routing reads recent answers of it). */
  readonly inventory: OllamaInventory;

  constructor(
    readonly url: string,
    timeouts: UpstreamTimeouts,
  ) {
    this.upstream = new OllamaUpstream(url, timeouts);
    this.inventory = new OllamaInventory(this.upstream);
  }

  status(): OllamaHostStatus {
    return { url: this.url, healthy: this.healthy, error: this.error, checkedAt: this.checkedAt, activeRequests: this.active };
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  get activeRequests(): number {
    return this.active;
  }

  /** true/false, or undefined when the host could not be asked (`/api/ps`, cached for a second). */
  async isLoaded(model: string): Promise<boolean | undefined> {
    return this.inventory.isLoaded(model, LOADED_TTL_MS, PROBE_TIMEOUT_MS);
  }

  /** true/false, or undefined when the host could not be asked (`/api/tags`, cached for a few seconds). */
  async isInstalled(model: string): Promise<boolean | undefined> {
    return this.inventory.isInstalled(model, INSTALLED_TTL_MS, PROBE_TIMEOUT_MS);
  }

  /** Records that a model just answered here, so it counts as loaded without asking again. */
  markLoaded(model: string): void {
    this.inventory.markLoaded(model);
  }

  /** Forgets what is loaded and installed (after a load, unload, pull or delete through the gateway). */
  invalidate(): void {
    this.inventory.invalidate();
  }

  markUp(): void {
    this.healthy = true;
    this.error = null;
    this.checkedAt = new Date();
  }

  markDown(reason: string): void {
    this.healthy = false;
    this.error = reason;
    this.checkedAt = new Date();
  }

  /** Counts a request open on this host until the returned function is called. */
  open(): () => void {
    this.active++;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      this.active--;
    };
  }

  /** Asks `/api/version`; updates the health state. */
  async check(timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
    try {
      await this.upstream.version(AbortSignal.timeout(timeoutMs));
      this.markUp();
      return true;
    } catch (e) {
      this.markDown(isGatewayError(e) ? e.message : String(e));
      return false;
    }
  }
}

export interface FailoverPolicy {
  /** Further rounds over the hosts after the first one fails everywhere; 0 = one round. */
  retries: number;
  /** Pause before each further round (times the round number). */
  delayMs: number;
  /** Called before the next host (or round) is tried (logging). */
  onFailover?(failed: OllamaHost, next: OllamaHost, error: GatewayError): void;
}

/** Failures that say nothing about the request itself: the next host may well answer it. */
const hostFailure = (e: unknown): e is GatewayError => isGatewayError(e) && e.code === ErrorCode.UPSTREAM_UNAVAILABLE;
/** A host that lacks the model (404) while other hosts remain: try them before giving up. */
const modelMissing = (e: unknown): e is GatewayError => isGatewayError(e) && e.code === ErrorCode.MODEL_NOT_FOUND;

export interface PoolOptions {
  timeouts: UpstreamTimeouts;
  /** Health checks of every host this often (only with more than one host); 0 = none. */
  healthCheckIntervalMs: number;
  log: Logger;
}

/**
 * The Ollama hosts behind the gateway (`OLLAMA_HOST`, a comma-separated list). Requests go to a
 * host that has the model loaded, else one that has it installed, then the least busy one; a
 * host that cannot be reached is skipped (and checked again in the background) and a request
 * that fails to connect before its first chunk moves to the next host. With one host this is
 * exactly the single-host gateway.
 */
export class OllamaPool {
  readonly hosts: readonly OllamaHost[];
  private timer: NodeJS.Timeout | undefined;
  private rotation = 0;

  constructor(
    urls: readonly string[],
    private readonly opts: PoolOptions,
  ) {
    if (urls.length === 0) throw new Error('an Ollama pool needs at least one host');
    this.hosts = urls.map((url) => new OllamaHost(url, opts.timeouts));
  }

  /** The first configured host (single-host defaults: the GPU probe, capabilities lookups). */
  get primary(): OllamaHost {
    return this.hosts[0];
  }

  /** A host by its URL as configured (a trailing slash does not matter); BAD_USER_INPUT otherwise. */
  host(url: string): OllamaHost {
    const wanted = url.trim().replace(/\/+$/, '');
    const found = this.hosts.find((h) => h.url.replace(/\/+$/, '') === wanted);
    if (!found) throw badInput(`"${url.slice(0, 200)}" is not one of the gateway's Ollama hosts (${this.hosts.map((h) => h.url).join(', ')}).`, { field: 'host' });
    return found;
  }

  /** The given host, or every host when none is given. */
  select(url: string | null | undefined): OllamaHost[] {
    return url ? [this.host(url)] : [...this.hosts];
  }

  /** Starts background health checks (with more than one host). */
  start(): void {
    if (this.hosts.length < 2 || this.opts.healthCheckIntervalMs <= 0 || this.timer) return;
    const checkAll = () => {
      for (const h of this.hosts) {
        const was = h.isHealthy;
        void h.check().then((ok) => {
          if (ok !== was) this.opts.log[ok ? 'info' : 'warn']({ host: h.url, error: h.status().error }, ok ? 'Ollama host is back' : 'Ollama host is unreachable');
        });
      }
    };
    this.timer = setInterval(checkAll, this.opts.healthCheckIntervalMs);
    this.timer.unref();
    checkAll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const h of this.hosts) h.upstream.close();
  }

  /**
   * Hosts in the order a request for `model` should try them: healthy before unhealthy; among
   * those, model loaded, then installed, then unknown, then missing; then fewest open requests;
   * ties take turns.
   */
  async candidates(model: string): Promise<OllamaHost[]> {
    if (this.hosts.length === 1) return [...this.hosts];
    // Equal hosts take turns: each request's ties start one host further on.
    const offset = this.rotation++ % this.hosts.length;
    const scored = await Promise.all(
      this.hosts.map(async (host, i) => {
        if (!host.isHealthy) return { host, rank: 9, i };
        const [loaded, installed] = await Promise.all([host.isLoaded(model), host.isInstalled(model)]);
        const rank = loaded ? 0 : installed ? 1 : installed === undefined ? 2 : 3;
        return { host, rank, i: (i - offset + this.hosts.length) % this.hosts.length };
      }),
    );
    scored.sort((a, b) => a.rank - b.rank || a.host.activeRequests - b.host.activeRequests || a.i - b.i);
    return scored.map((s) => s.host);
  }

  /**
   * Streams from the first of `hosts` that answers. Before the first chunk, a host that cannot be
   * reached is marked unhealthy and the next one is tried at once (and one without the model is
   * skipped while others remain); after a whole round fails, `policy.retries` more rounds follow
   * with a pause. Once a chunk has arrived nothing is retried (a second answer would be a second
   * charge), and every further `next()` goes straight to the host's stream: no layer per token.
   * `onHost` hears which host is about to be asked (again on a failover) and may wait (for a slot
   * of that host); the caller counts the request against it (`OllamaHost.open`).
   */
  stream<T>(
    hosts: readonly OllamaHost[],
    open: (host: OllamaHost) => AsyncIterable<T>,
    policy: FailoverPolicy,
    signal: AbortSignal,
    onHost?: (host: OllamaHost) => void | Promise<void>,
  ): AsyncGenerator<T> {
    let inner: AsyncIterator<T> | undefined;
    let received = false;
    const first = async (): Promise<IteratorResult<T>> => {
      let unavailable: GatewayError | undefined;
      let missing: GatewayError | undefined;
      for (let round = 0; round <= policy.retries; round++) {
        if (round > 0) {
          policy.onFailover?.(hosts[hosts.length - 1], hosts[0], unavailable!);
          await pause(policy.delayMs * round, signal);
          if (signal.aborted) throw unavailable;
        }
        for (let i = 0; i < hosts.length; i++) {
          const host = hosts[i];
          await onHost?.(host);
          try {
            inner = open(host)[Symbol.asyncIterator]();
            const r = await inner.next();
            received = true;
            host.markUp();
            return r;
          } catch (e) {
            inner = undefined;
            if (signal.aborted) throw e;
            if (hostFailure(e)) {
              host.markDown(e.message);
              unavailable = e;
            } else if (modelMissing(e)) {
              missing = e;
            } else {
              throw e;
            }
            if (i + 1 < hosts.length) policy.onFailover?.(host, hosts[i + 1], e);
          }
        }
        // Every host answered that it lacks the model: asking again will not change that.
        if (!unavailable) throw missing;
      }
      throw unavailable ?? missing ?? new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, 'No Ollama host answered.');
    };
    const it = {
      next: (): Promise<IteratorResult<T>> => (received ? inner!.next() : first()),
      return: async (value?: unknown): Promise<IteratorResult<T>> => {
        await inner?.return?.(value);
        return { done: true, value: value as T };
      },
      throw: async (error?: unknown): Promise<IteratorResult<T>> => {
        await inner?.return?.();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it as unknown as AsyncGenerator<T>;
  }
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
