// Bundles the admin console (admin/) into dist/admin with esbuild: one script, one stylesheet,
// index.html. Fails when the assets together exceed the gzip budget (they are served offline).
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

export const ADMIN_GZIP_BUDGET = 300 * 1024;
const root = fileURLToPath(new URL('..', import.meta.url));
export const ADMIN_OUT = join(root, 'dist', 'admin');

/** Gzipped size of every built file, and the sum. */
export function gzippedSizes(dir = ADMIN_OUT) {
  const files = Object.fromEntries(readdirSync(dir).map((f) => [f, gzipSync(readFileSync(join(dir, f)), { level: 9 }).length]));
  return { files, total: Object.values(files).reduce((a, b) => a + b, 0) };
}

export async function buildAdmin({ quiet = false } = {}) {
  rmSync(ADMIN_OUT, { recursive: true, force: true });
  mkdirSync(ADMIN_OUT, { recursive: true });
  await build({
    entryPoints: { app: join(root, 'admin', 'src', 'main.tsx') },
    outdir: ADMIN_OUT,
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: quiet ? 'error' : 'warning',
  });
  for (const file of ['index.html', 'favicon.svg']) copyFileSync(join(root, 'admin', file), join(ADMIN_OUT, file));
  const sizes = gzippedSizes();
  if (sizes.total > ADMIN_GZIP_BUDGET) throw new Error(`admin console assets are ${sizes.total} bytes gzipped, over the ${ADMIN_GZIP_BUDGET}-byte budget`);
  if (!quiet) console.error(`admin console built: ${(sizes.total / 1024).toFixed(1)} KB gzipped`);
  return sizes;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildAdmin().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
