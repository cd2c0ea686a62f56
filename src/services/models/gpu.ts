import { execFile } from 'node:child_process';

/** The query the probe runs; its output has one line per GPU, values in MiB, no header or units. */
export const NVIDIA_SMI_ARGS = ['--query-gpu=index,name,memory.total,memory.used,memory.free', '--format=csv,noheader,nounits'] as const;

const MIB = 1024 * 1024;

export interface GpuDevice {
  index: number;
  name: string;
  /** Bytes; null when the driver reports `[N/A]`. */
  totalBytes: number | null;
  usedBytes: number | null;
  freeBytes: number | null;
}

export type VramSource = 'NVIDIA_SMI' | 'CONFIGURED' | 'UNKNOWN';

export interface VramReport {
  source: VramSource;
  /** Summed over all GPUs (Ollama splits a model across GPUs); null when unknown. */
  totalBytes: number | null;
  usedBytes: number | null;
  freeBytes: number | null;
  gpus: GpuDevice[];
  /** Why the numbers are unknown or approximate. */
  warning: string | null;
}

const mib = (field: string): number | null | undefined => {
  const v = field.trim();
  if (/^\[?N\/A\]?$/i.test(v) || /^\[Not Supported\]$/i.test(v)) return null;
  if (!/^\d+(\.\d+)?$/.test(v)) return undefined;
  return Math.round(Number(v) * MIB);
};

/**
 * Parses `nvidia-smi --query-gpu=index,name,memory.total,memory.used,memory.free
 * --format=csv,noheader,nounits`. Returns null when the output is empty or any line is not in that
 * format (then VRAM counts as unknown). `[N/A]` memory values become null for that GPU.
 */
export function parseNvidiaSmi(output: string): GpuDevice[] | null {
  const lines = output.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) return null;
  const gpus: GpuDevice[] = [];
  for (const line of lines) {
    const fields = line.split(',');
    if (fields.length < 5) return null;
    // The name may itself hold commas: index first, the three numbers last, the name in between.
    const index = fields[0].trim();
    const [total, used, free] = fields.slice(-3).map(mib);
    const name = fields.slice(1, -3).join(',').trim();
    if (!/^\d+$/.test(index) || !name || total === undefined || used === undefined || free === undefined) return null;
    gpus.push({ index: Number(index), name, totalBytes: total, usedBytes: used, freeBytes: free });
  }
  return gpus;
}

const sum = (values: Array<number | null>): number | null => (values.every((v): v is number => v !== null) ? values.reduce((a, b) => a + b, 0) : null);

export interface GpuProbeOptions {
  /** GPU_VRAM_BYTES: total VRAM, overriding nvidia-smi. */
  configuredVramBytes?: number;
  /** Path of nvidia-smi (NVIDIA_SMI_PATH); null disables the probe. */
  nvidiaSmiPath: string | null;
  /** Why there is no probe when nvidiaSmiPath is null (default: it was switched off). */
  noProbeReason?: string;
  /** VRAM Ollama's loaded models use now (sum of /api/ps size_vram); needed with configuredVramBytes. */
  usedByModels: () => Promise<number>;
  timeoutMs?: number;
}

/** Free GPU memory: GPU_VRAM_BYTES minus what /api/ps reports, else nvidia-smi, else unknown. */
export class GpuProbe {
  constructor(private readonly opts: GpuProbeOptions) {}

  async probe(): Promise<VramReport> {
    if (this.opts.configuredVramBytes) {
      const total = this.opts.configuredVramBytes;
      let used: number;
      try {
        used = await this.opts.usedByModels();
      } catch (e) {
        // Ollama did not say what it holds: the total is known, what is free is not.
        const why = e instanceof Error ? e.message : String(e);
        return { source: 'CONFIGURED', totalBytes: total, usedBytes: null, freeBytes: null, gpus: [], warning: `Ollama did not report its loaded models (${why}); free VRAM is unknown.` };
      }
      return { source: 'CONFIGURED', totalBytes: total, usedBytes: used, freeBytes: Math.max(0, total - used), gpus: [], warning: null };
    }
    if (!this.opts.nvidiaSmiPath) return unknown(this.opts.noProbeReason ?? 'No GPU probe: NVIDIA_SMI_PATH is off and GPU_VRAM_BYTES is unset.');
    let output: string;
    try {
      output = await run(this.opts.nvidiaSmiPath, this.opts.timeoutMs ?? 5000);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      return unknown(code === 'ENOENT' ? `nvidia-smi was not found (${this.opts.nvidiaSmiPath}).` : `nvidia-smi failed: ${(e as Error).message.split('\n')[0]}`);
    }
    const gpus = parseNvidiaSmi(output);
    if (!gpus) return unknown('nvidia-smi output was not in the expected format.');
    const free = sum(gpus.map((g) => g.freeBytes));
    return {
      source: 'NVIDIA_SMI',
      totalBytes: sum(gpus.map((g) => g.totalBytes)),
      usedBytes: sum(gpus.map((g) => g.usedBytes)),
      freeBytes: free,
      gpus,
      warning: free === null ? 'nvidia-smi reports no free-memory figure ([N/A]) for at least one GPU.' : null,
    };
  }
}

function unknown(warning: string): VramReport {
  return { source: 'UNKNOWN', totalBytes: null, usedBytes: null, freeBytes: null, gpus: [], warning };
}

function run(file: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...NVIDIA_SMI_ARGS], { timeout: timeoutMs, maxBuffer: 1024 * 1024, windowsHide: true }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
  });
}
