import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestGateway, startGateway } from '../helpers/gateway.js';
import { gql, gqlError } from '../helpers/models.js';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'fake-smi-e2e-'));
const script = join(dir, 'nvidia-smi');
const output = (text: string) => writeFileSync(join(dir, 'output.txt'), text);
let gw: TestGateway;

beforeAll(async () => {
  copyFileSync(new URL('../fixtures/fake-nvidia-smi.sh', import.meta.url), script);
  chmodSync(script, 0o755);
  gw = await startGateway({ env: { NVIDIA_SMI_PATH: script } });
});
afterAll(async () => {
  await gw?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('VRAM from nvidia-smi (NVIDIA_SMI_PATH)', () => {
  it('reports every GPU in the gpu query', async () => {
    output('0, NVIDIA GeForce RTX 3060, 12288, 288, 12000\n1, NVIDIA GeForce RTX 3060, 12288, 12288, 0\n');
    const { gpu } = await gql(gw, '{ gpu { source totalBytes freeBytes warning gpus { index name totalBytes usedBytes freeBytes } } }', undefined, gw.userSecret);
    expect(gpu).toMatchObject({ source: 'NVIDIA_SMI', totalBytes: 24576 * MiB, freeBytes: 12000 * MiB, warning: null });
    expect(gpu.gpus[1]).toEqual({ index: 1, name: 'NVIDIA GeForce RTX 3060', totalBytes: 12288 * MiB, usedBytes: 12288 * MiB, freeBytes: 0 });
  });

  it('refuses a load that does not fit in the free memory nvidia-smi reports', async () => {
    output('0, NVIDIA GeForce GTX 1650, 4096, 3072, 1024\n');
    const { error } = await gqlError(gw, 'mutation { loadModel(name: "llama3.2") { warnings } }');
    expect(error.extensions).toMatchObject({ code: 'INSUFFICIENT_VRAM', neededBytes: 2_019_393_189, freeBytes: 1024 * MiB });
    expect(gw.emulator.running()).toEqual([]);
  });

  it('loads with a warning when nvidia-smi prints garbage (VRAM unknown), and keeps serving', async () => {
    output('Failed to initialize NVML: Driver/library version mismatch\n');
    const { gpu } = await gql(gw, '{ gpu { source freeBytes warning } }');
    expect(gpu).toMatchObject({ source: 'UNKNOWN', freeBytes: null });
    const { loadModel } = await gql(gw, 'mutation { loadModel(name: "llama3.2") { freeBytes warnings model { loaded } } }');
    expect(loadModel.freeBytes).toBeNull();
    expect(loadModel.model.loaded).toBe(true);
    expect(loadModel.warnings).toEqual([expect.stringMatching(/VRAM is unknown.*not in the expected format/)]);
  });
});
