// Credits raced by two gateway processes on one SQLite file: the conditional UPDATE the ledger
// uses reserves exactly the balance, never more, and nothing fails. The same race with the
// reservation written as read-then-write is run as a control: it breaks the invariant (an
// overspend, or writes refused because their read was stale), so this race can catch the bug.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { type TestDatabase, createTestDatabase } from '../helpers/database.js';

type Outcome = { reserved: number; refused: number; failed: number };

const CREDITS = 40;
const ATTEMPTS = 40; // per process: 80 in all for 40 credits

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('sqlite');
});
afterAll(() => db?.cleanup());

async function newKey(): Promise<string> {
  const repo = db.orm.getRepository(ApiKey);
  const key = await repo.save(repo.create({ name: 'race', prefix: 'race', secretHash: randomBytes(32).toString('hex'), role: 'USER', credits: CREDITS }));
  return key.id;
}

function racer(keyId: string, mode: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/credit-race.ts', db.options.dbPath!, keyId, String(ATTEMPTS), mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let isReady!: () => void;
  const ready = new Promise<void>((resolve) => (isReady = resolve));
  child.stdout.on('data', (d) => {
    out += String(d);
    if (out.startsWith('ready\n')) isReady();
  });
  const done = new Promise<Outcome>((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.slice('ready\n'.length)) as Outcome) : reject(new Error(`racer exited ${code}`)))),
  );
  // A racer that dies before it is ready fails the race instead of leaving it waiting.
  done.catch(() => isReady());
  return { child, ready, done };
}

async function race(mode: 'conditional' | 'read-then-write') {
  const keyId = await newKey();
  const racers = [racer(keyId, mode), racer(keyId, mode)];
  // Both have opened the database (tsx compiled, migrations found nothing to do) before the start signal.
  await Promise.all(racers.map((r) => r.ready));
  for (const r of racers) r.child.stdin.end('go\n');
  const outcomes = await Promise.all(racers.map((r) => r.done));
  const total = outcomes.reduce((t, o) => ({ reserved: t.reserved + o.reserved, refused: t.refused + o.refused, failed: t.failed + o.failed }), { reserved: 0, refused: 0, failed: 0 });
  const balance = (await db.orm.getRepository(ApiKey).findOneByOrFail({ id: keyId })).credits;
  return { total, balance, outcomes };
}

/** The invariant: every credit reserved exactly once, every other attempt refused, none failed. */
const holds = ({ total, balance }: Awaited<ReturnType<typeof race>>) => total.reserved === CREDITS && total.refused === 2 * ATTEMPTS - CREDITS && total.failed === 0 && balance === 0;

describe('credit reservations raced by two processes on one SQLite file', () => {
  it('the conditional UPDATE reserves exactly the balance: no overspend, nothing fails', { timeout: 60_000 }, async () => {
    const result = await race('conditional');
    expect(result.total).toEqual({ reserved: CREDITS, refused: 2 * ATTEMPTS - CREDITS, failed: 0 });
    expect(result.balance).toBe(0);
    expect(result.outcomes.every((o) => o.reserved > 0)).toBe(true); // both processes really took part
  });

  it('control: read-then-write in the same race breaks the invariant', { timeout: 60_000 }, async () => {
    const result = await race('read-then-write');
    expect(holds(result), JSON.stringify(result)).toBe(false);
  });
});
