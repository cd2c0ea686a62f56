/** What `ReadAhead.take()` hands over: every chunk read since the previous take. */
export interface ReadBatch<T, C = unknown> {
  /** The text deltas of those chunks, concatenated. */
  text: string;
  /** Their reasoning deltas (thinking models), concatenated. */
  thinking: string;
  /** Tool calls those chunks completed. */
  calls: C[];
  /** Chunks with a non-empty delta or reasoning (one token each). */
  tokens: number;
  /** Chunks read, with or without text (the final chunk counts only when it carries text). */
  chunks: number;
  /** The final chunk (`done`), when it has been read. */
  final?: T;
  /** The source failed after the chunks above (`error` holds what it threw). */
  failed: boolean;
  error?: unknown;
  /** The source ended without a final chunk. */
  ended: boolean;
}

export interface ReadAheadOptions<T, C = unknown> {
  /** Text of a chunk, the final one included (may be empty). */
  delta(chunk: T): string;
  /** Reasoning text of a chunk (may be empty). */
  thinking?(chunk: T): string;
  /** Tool calls a chunk carries (none: undefined or empty). */
  calls?(chunk: T): C[] | undefined;
  isFinal(chunk: T): boolean;
  /** Stop reading ahead once this much text waits to be taken (the consumer is slower than the source). */
  maxChars: number;
  maxTokens: number;
}

/**
 * Reads a chunk stream ahead of its consumer and hands over, on each `take()`, everything read
 * since the previous take: chunks that arrive while the consumer is busy (sending the previous
 * event to its client) are coalesced into one batch, so a fast source costs one event per batch
 * instead of one per token, while a consumer that waits gets a chunk the moment it arrives (the
 * first token is never held back). Reading stops when the batch waiting to be taken is full, so
 * a consumer that stops taking (a client that stops reading) stops the source too: at most one
 * batch plus one chunk are held, and backpressure reaches the upstream connection as before.
 */
export class ReadAhead<T, C = unknown> {
  private text = '';
  private thinking = '';
  private calls: C[] = [];
  private tokens = 0;
  private chunks = 0;
  private final: T | undefined;
  private error: unknown;
  private failed = false;
  private ended = false;
  private closed = false;
  /** A `next()` of the source is outstanding. */
  private reading = false;
  private wake: (() => void) | undefined;
  private endLinger: (() => void) | undefined;

  constructor(
    private readonly source: AsyncIterator<T>,
    private readonly options: ReadAheadOptions<T, C>,
  ) {}

  /** Something is waiting to be taken (a take() now would not wait). */
  get ready(): boolean {
    return this.chunks > 0 || this.final !== undefined || this.failed || this.ended;
  }

  /** Starts reading (before the first take, so the first chunk is read as soon as it arrives). */
  start(): void {
    this.pump();
  }

  /** Waits until at least one chunk (or the end, or a failure) is there, then returns all of it. */
  async take(): Promise<ReadBatch<T, C>> {
    if (!this.ready) {
      this.pump();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const batch: ReadBatch<T, C> = { text: this.text, thinking: this.thinking, calls: this.calls, tokens: this.tokens, chunks: this.chunks, failed: this.failed, ended: this.ended || this.closed };
    if (this.final !== undefined) batch.final = this.final;
    if (this.failed) batch.error = this.error;
    this.text = '';
    this.thinking = '';
    if (this.calls.length) this.calls = [];
    this.tokens = 0;
    this.chunks = 0;
    this.pump(); // the batch was full: read on
    return batch;
  }

  /**
   * Waits up to `ms` so that more chunks coalesce into the next batch; returns early once the batch
   * is full or the source has finished (final chunk, failure, end, close), so nothing final waits.
   */
  linger(ms: number): Promise<void> {
    if (this.settled) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const end = () => {
        clearTimeout(timer);
        this.endLinger = undefined;
        resolve();
      };
      const timer = setTimeout(end, ms);
      this.endLinger = end;
    });
  }

  /** Nothing more will be read before a take(): the batch is full or the source is finished. */
  private get settled(): boolean {
    return (
      this.closed ||
      this.failed ||
      this.ended ||
      this.final !== undefined ||
      this.text.length + this.thinking.length >= this.options.maxChars ||
      this.tokens >= this.options.maxTokens
    );
  }

  /** Stops reading and closes the source (its `return()`), without waiting for it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wakeUp();
    this.endLinger?.();
    const closing = this.source.return?.();
    if (closing) void closing.then(undefined, () => {});
  }

  private pump(): void {
    if (this.reading || this.closed || this.failed || this.ended || this.final !== undefined) return;
    if (this.text.length + this.thinking.length >= this.options.maxChars || this.tokens >= this.options.maxTokens) return;
    this.reading = true;
    this.source.next().then(this.onResult, this.onError);
  }

  private readonly onResult = (r: IteratorResult<T>): void => {
    this.reading = false;
    if (this.closed) return;
    if (r.done) {
      this.ended = true;
    } else {
      // The final chunk is a content chunk too: Ollama's output parsers (harmony, tool and thinking
      // parsers) flush held-back text on it (server/routes.go: the parser's Add(content, done) result
      // goes on the response that has Done), so its text counts before its metrics.
      const final = this.options.isFinal(r.value);
      const delta = this.options.delta(r.value);
      const thought = this.options.thinking?.(r.value) ?? '';
      const calls = this.options.calls?.(r.value);
      if (!final || delta || thought || calls?.length) this.chunks++;
      if (delta) this.text += delta;
      if (thought) this.thinking += thought;
      if (delta || thought) this.tokens++;
      if (calls?.length) this.calls.push(...calls);
      if (final) this.final = r.value;
      else this.pump();
    }
    this.wakeUp();
    if (this.endLinger && this.settled) this.endLinger();
  };

  private readonly onError = (e: unknown): void => {
    this.reading = false;
    if (this.closed) return;
    this.failed = true;
    this.error = e;
    this.wakeUp();
    this.endLinger?.();
  };

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
