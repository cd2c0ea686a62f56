// A model bigger than the GPU runs partly on the CPU: Ollama's /api/ps reports size_vram < size
// (0 on a CPU-only host); the gateway shows where each loaded model runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestGateway, startGateway } from '../helpers/gateway.js';
import { gql } from '../helpers/models.js';

const GB = 1_000_000_000;
let gw: TestGateway;
beforeAll(async () => {
  // A 3 GB GPU: qwen3:0.6b (0.5 GB) fits, llava:7b (4.7 GB) does not.
  gw = await startGateway({ env: { GPU_VRAM_BYTES: String(3 * GB), NVIDIA_SMI_PATH: 'off' }, emulator: { vramBytes: 3 * GB } });
});
afterAll(async () => {
  await gw?.stop();
});

describe('partial offload', () => {
  it('shows a model that fits as GPU, and one that does not as PARTIAL with its CPU share', async () => {
    type Running = { runningModels: Array<{ name: string; runtime: { sizeBytes: number; vramBytes: number; cpuBytes: number; offload: string } }> };
    const running = async () =>
      Object.fromEntries(
        (await gql<Running>(gw, '{ runningModels { name runtime { sizeBytes vramBytes cpuBytes offload } } }', undefined, gw.userSecret)).runningModels.map((m) => [m.name, m.runtime]),
      );
    await gql(gw, 'mutation { generate(input: { model: "qwen3:0.6b", prompt: "hi", options: { think: OFF } }) { text } }', undefined, gw.userSecret);
    expect((await running())['qwen3:0.6b']).toMatchObject({ offload: 'GPU', cpuBytes: 0 });
    // llava does not fit even alone: Ollama makes room (unloads the idle qwen3) and loads it partly.
    await gql(gw, 'mutation { generate(input: { model: "llava:7b", prompt: "hi" }) { text } }', undefined, gw.userSecret);
    const byName = await running();
    const llava = byName['llava:7b'];
    expect(llava.offload).toBe('PARTIAL');
    expect(llava.vramBytes).toBeGreaterThan(0);
    expect(llava.vramBytes).toBeLessThan(llava.sizeBytes);
    expect(llava.cpuBytes).toBe(llava.sizeBytes - llava.vramBytes);
    const { model } = await gql<{ model: { hosts: Array<{ offload: string; cpuBytes: number }> } }>(gw, '{ model(name: "llava:7b") { hosts { offload cpuBytes } } }', undefined, gw.userSecret);
    expect(model.hosts[0]).toEqual({ offload: 'PARTIAL', cpuBytes: llava.cpuBytes });
  });
});
