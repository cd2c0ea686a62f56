import { describe, expect, it } from 'vitest';
import { eventLoopLoad } from '../../src/services/generation/load.js';

const busyFor = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('eventLoopLoad', () => {
  it('reports a busy event loop while it is kept busy, and a calm one after', async () => {
    expect(eventLoopLoad.busy).toBe(false); // starts sampling
    // ~95 % busy for 600 ms: several samples above the threshold.
    for (let i = 0; i < 20; i++) {
      busyFor(30);
      await sleep(1);
    }
    expect(eventLoopLoad.busy).toBe(true);
    await sleep(600);
    expect(eventLoopLoad.busy).toBe(false);
  });
});
