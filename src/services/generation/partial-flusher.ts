import type { GatewayDatabase } from '../db/database.js';
import { savePartialUsageRow } from '../db/generations.js';
import { savePartialMessage } from '../db/messages.js';
import type { Logger } from '../platform/logger.js';
import { nextTurn } from '../platform/event-loop.js';

/** What a running stream has produced so far. */
export interface PartialAnswer {
  text: string;
  completionTokens: number;
  /** Credits the tokens so far would cost; what a crash settles the reservation to. */
  creditsSoFar: number;
  /** Session chats: the assistant message that shows the answer. */
  messageId?: string | null;
}

/**
 * Saves the partial text of running streams every `intervalMs`, all streams in one transaction,
 * so that after a crash the interrupted answers (and what they cost) are still on disk, without
 * a database write per token.
 */
export class PartialFlusher {
  private readonly dirty = new Map<string, PartialAnswer>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: GatewayDatabase,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is pending. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  update(generationId: string, partial: PartialAnswer): void {
    if (this.intervalMs > 0) this.dirty.set(generationId, partial);
  }

  /** The stream finished and wrote its final state itself. */
  forget(generationId: string): void {
    this.dirty.delete(generationId);
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeBatch());
    return this.flushing;
  }

  private async writeBatch(): Promise<void> {
    if (!this.dirty.size || !this.db.isOpen) return;
    const batch = [...this.dirty.entries()];
    this.dirty.clear();
    // A few dozen rows per transaction, with a turn of the event loop between them: rewriting the
    // text of hundreds of streams in one go would stall every stream (and every first token) for
    // milliseconds once per interval.
    for (let i = 0; i < batch.length; i += ROWS_PER_TRANSACTION) {
      if (i > 0) await nextTurn();
      const rows = batch.slice(i, i + ROWS_PER_TRANSACTION);
      try {
        await this.db.sqlClient.transaction(async (tx) => {
          for (const [id, p] of rows) {
            // Only while still STREAMING: a stream that finished meanwhile wrote its final text.
            await savePartialUsageRow(tx, id, { response: p.text, completionTokens: p.completionTokens, creditsCharged: p.creditsSoFar });
            if (p.messageId) await savePartialMessage(tx, p.messageId, { content: p.text, completionTokens: p.completionTokens });
          }
        });
      } catch (err) {
        this.log.warn({ err, streams: rows.length }, 'could not save partial answers');
      }
    }
  }
}

const ROWS_PER_TRANSACTION = 25;
