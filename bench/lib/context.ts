// What every part of a benchmark run shares: paths, the configuration, the models the bench emulator
// serves, the run's start time and its progress log.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchConfig, loadBenchConfig } from './config.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RESULTS = join(ROOT, 'bench', 'results');
export const PROMPT = 'Benchmark: relay this answer as fast as you can.';
export const LONG_MODEL = 'bench-long';
export const SHORT_MODEL = 'bench-short';
export const BACKGROUND_MODEL = 'bench-bg';
/** Ollama's slots per host and model: the gateway's OLLAMA_NUM_PARALLEL and, where it has the option, the emulator's numParallel. */
export const NUM_PARALLEL = 1024;
/** Issue 16's throughput streams: 100 concurrent streams of 200 tokens. */
export const ISSUE16_STREAM_TOKENS = 200;

export const cfg: BenchConfig = loadBenchConfig();
export const startedAt = new Date();
export const log = (msg: string) => process.stderr.write(`[bench ${((Date.now() - startedAt.getTime()) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

export function stamp(d: Date): string {
  return d.toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
}
