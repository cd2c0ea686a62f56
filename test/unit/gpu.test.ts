import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GpuProbe, parseNvidiaSmi } from '../../src/services/models/gpu.js';

const MiB = 1024 * 1024;

describe('parseNvidiaSmi', () => {
  it('reads one line per GPU, in MiB', () => {
    const out = '0, NVIDIA GeForce RTX 4090, 24564, 1234, 23330\n1, NVIDIA RTX A6000, 49140, 0, 49140\n';
    expect(parseNvidiaSmi(out)).toEqual([
      { index: 0, name: 'NVIDIA GeForce RTX 4090', totalBytes: 24564 * MiB, usedBytes: 1234 * MiB, freeBytes: 23330 * MiB },
      { index: 1, name: 'NVIDIA RTX A6000', totalBytes: 49140 * MiB, usedBytes: 0, freeBytes: 49140 * MiB },
    ]);
  });

  it('tolerates trailing spaces, CRLF and blank lines', () => {
    expect(parseNvidiaSmi('  0, Tesla T4 , 15360 , 0 , 15360   \r\n\r\n')).toEqual([
      { index: 0, name: 'Tesla T4', totalBytes: 15360 * MiB, usedBytes: 0, freeBytes: 15360 * MiB },
    ]);
  });

  it('keeps a product name that contains commas', () => {
    expect(parseNvidiaSmi('0, NVIDIA A100-SXM4-80GB, rev 2, 81920, 10, 81910')![0].name).toBe('NVIDIA A100-SXM4-80GB, rev 2');
  });

  it('turns [N/A] memory values into null for that GPU', () => {
    expect(parseNvidiaSmi('0, NVIDIA GH200, [N/A], [N/A], [N/A]\n1, NVIDIA L4, 23034, 0, 23034')).toEqual([
      { index: 0, name: 'NVIDIA GH200', totalBytes: null, usedBytes: null, freeBytes: null },
      { index: 1, name: 'NVIDIA L4', totalBytes: 23034 * MiB, usedBytes: 0, freeBytes: 23034 * MiB },
    ]);
  });

  it('returns null (unknown) for garbage, partial garbage, a header line or empty output', () => {
    for (const out of [
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
      '0, NVIDIA L4, 23034, 0, 23034\nFailed to initialize NVML: Driver/library version mismatch',
      'index, name, memory.total [MiB], memory.used [MiB], memory.free [MiB]\n0, NVIDIA L4, 23034, 0, 23034',
      '0, NVIDIA L4, 23034 MiB, 0 MiB, 23034 MiB',
      '0, NVIDIA L4, 23034, 0',
      '',
      '\n  \n',
    ]) {
      expect(parseNvidiaSmi(out), JSON.stringify(out)).toBeNull();
    }
  });
});

describe('GpuProbe', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fake-smi-'));
  const script = join(dir, 'nvidia-smi');
  copyFileSync(new URL('../fixtures/fake-nvidia-smi.sh', import.meta.url), script);
  chmodSync(script, 0o755);
  const output = (text: string) => writeFileSync(join(dir, 'output.txt'), text);
  const noModels = async () => 0;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sums free memory over every GPU reported by nvidia-smi', async () => {
    output('0, NVIDIA GeForce RTX 4090, 24564, 1234, 23330\n1, NVIDIA GeForce RTX 4090, 24564, 564, 24000\n');
    const report = await new GpuProbe({ nvidiaSmiPath: script, usedByModels: noModels }).probe();
    expect(report).toMatchObject({ source: 'NVIDIA_SMI', totalBytes: 49128 * MiB, usedBytes: 1798 * MiB, freeBytes: 47330 * MiB, warning: null });
    expect(report.gpus).toHaveLength(2);
  });

  it('reports free VRAM as unknown when one GPU says [N/A]', async () => {
    output('0, NVIDIA GH200, [N/A], [N/A], [N/A]\n');
    const report = await new GpuProbe({ nvidiaSmiPath: script, usedByModels: noModels }).probe();
    expect(report).toMatchObject({ source: 'NVIDIA_SMI', freeBytes: null });
    expect(report.warning).toMatch(/N\/A/);
  });

  it('is unknown for garbage output, a failing command or a missing binary', async () => {
    output('something else entirely\n');
    expect(await new GpuProbe({ nvidiaSmiPath: script, usedByModels: noModels }).probe()).toMatchObject({ source: 'UNKNOWN', freeBytes: null, warning: expect.stringMatching(/format/) });
    const missing = await new GpuProbe({ nvidiaSmiPath: join(dir, 'no-such-binary'), usedByModels: noModels }).probe();
    expect(missing).toMatchObject({ source: 'UNKNOWN', freeBytes: null, gpus: [], warning: expect.stringMatching(/not found/) });
    const failing = join(dir, 'failing');
    writeFileSync(failing, '#!/bin/sh\necho "NVIDIA-SMI has failed" >&2\nexit 9\n');
    chmodSync(failing, 0o755);
    expect(await new GpuProbe({ nvidiaSmiPath: failing, usedByModels: noModels }).probe()).toMatchObject({ source: 'UNKNOWN', warning: expect.stringMatching(/failed/) });
    expect(await new GpuProbe({ nvidiaSmiPath: null, usedByModels: noModels }).probe()).toMatchObject({ source: 'UNKNOWN' });
  });

  it('prefers GPU_VRAM_BYTES, minus what loaded models use, over nvidia-smi', async () => {
    output('0, NVIDIA L4, 23034, 0, 23034\n');
    const report = await new GpuProbe({ nvidiaSmiPath: script, configuredVramBytes: 8e9, usedByModels: async () => 3e9 }).probe();
    expect(report).toEqual({ source: 'CONFIGURED', totalBytes: 8e9, usedBytes: 3e9, freeBytes: 5e9, gpus: [], warning: null });
  });
});
