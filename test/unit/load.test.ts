import { describe, expect, it } from 'vitest';
import { eventLoopLoad } from '../../src/services/generation/load.js';
import { until } from '../helpers/wait.js';

const busyFor = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('eventLoopLoad', () => {
  it('reports a busy event loop while it is kept busy, and a calm one after', async () => {
    // Starts sampling (or, when an earlier test file in this worker started it, waits for a calm loop).
    await until(() => !eventLoopLoad.busy, 10_000, 'a calm event loop to start from');
    // ~95 % busy until a sample sees it (it takes a few 100 ms samples; the bound only stops a hang).
    const keptBusySince = Date.now();
    while (!eventLoopLoad.busy && Date.now() - keptBusySince < 10_000) {
      busyFor(30);
      await sleep(1);
    }
    expect(eventLoopLoad.busy).toBe(true);
    // Idle: calm again once a sample sees it, however slowly a busy machine runs the sampler.
    await until(() => !eventLoopLoad.busy, 10_000, 'a calm event loop');
    expect(eventLoopLoad.busy).toBe(false);
  });
});
