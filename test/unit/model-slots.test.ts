import { describe, expect, it } from 'vitest';
import { ModelSlots } from '../../src/services/generation/model-slots.js';

describe('ModelSlots', () => {
  it('grants up to the limit at once and queues the rest in order with positions', async () => {
    const slots = new ModelSlots(2);
    const a = slots.enter('m');
    const b = slots.enter('m');
    const c = slots.enter('m');
    const d = slots.enter('m');
    expect([a.position, b.position, c.position, d.position]).toEqual([0, 0, 1, 2]);
    expect(slots.waiting('m')).toBe(2);
    const dMoved = d.moved();
    a.release();
    await c.granted;
    await dMoved;
    expect(c.position).toBe(0);
    expect(d.position).toBe(1);
    b.release();
    await d.granted;
    expect(d.position).toBe(0);
    expect(slots.waiting('m')).toBe(0);
  });

  it('keeps models apart and treats 0 as no limit', () => {
    const slots = new ModelSlots(1);
    expect(slots.enter('a').position).toBe(0);
    expect(slots.enter('b').position).toBe(0);
    expect(slots.enter('a').position).toBe(1);
    const open = new ModelSlots(0);
    for (let i = 0; i < 100; i++) expect(open.enter('a').position).toBe(0);
  });

  it('removes an aborted waiter and moves the ones behind it up', async () => {
    const slots = new ModelSlots(1);
    const holder = slots.enter('m');
    const ctl = new AbortController();
    const gone = slots.enter('m', ctl.signal);
    const behind = slots.enter('m');
    expect(behind.position).toBe(2);
    const moved = behind.moved();
    ctl.abort();
    await expect(gone.granted).rejects.toMatchObject({ code: 'CANCELLED' });
    await moved;
    expect(behind.position).toBe(1);
    holder.release();
    await behind.granted;
    behind.release();
    // Releasing twice must not free a slot that is not held.
    behind.release();
    expect(slots.enter('m').position).toBe(0);
    expect(slots.enter('m').position).toBe(1);
  });
});
