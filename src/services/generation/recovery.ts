import type { DataSource } from 'typeorm';
import { Generation } from '../../entities/generation.js';
import { Message } from '../../entities/message.js';
import type { CreditLedger } from '../credits.js';
import { inTransaction } from '../database.js';

export interface RecoveryReport {
  generations: number;
  messages: number;
  creditsRefunded: number;
}

/**
 * Run at start-up, before serving: generations and messages left STREAMING by a crash become
 * INTERRUPTED with the partial text last saved, and each credit reservation is settled to what
 * the saved tokens cost (the rest refunded), so balances are exact after `kill -9`.
 * Assumes one gateway process per database (see README, scale-out).
 */
export async function recoverInterrupted(db: DataSource, credits: CreditLedger): Promise<RecoveryReport> {
  return inTransaction(db, async (tx) => {
    const stale = await tx.find(Generation, { where: { status: 'STREAMING' } });
    let creditsRefunded = 0;
    const now = new Date();
    for (const g of stale) {
      const charged = Math.min(g.creditsReserved, g.creditsCharged);
      await tx.update(Generation, { id: g.id, status: 'STREAMING' }, { status: 'INTERRUPTED', errorCode: 'INTERRUPTED', creditsCharged: charged, finishedAt: now });
      await credits.refund(tx, g.apiKeyId, g.creditsReserved - charged);
      creditsRefunded += g.creditsReserved - charged;
    }
    const messages = await tx.update(Message, { status: 'STREAMING' }, { status: 'INTERRUPTED', errorCode: 'INTERRUPTED', updatedAt: now });
    return { generations: stale.length, messages: messages.affected ?? 0, creditsRefunded };
  });
}
