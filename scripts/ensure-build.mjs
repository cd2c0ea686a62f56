// `npm start` runs the compiled server; build first when dist/ is missing or older than src/.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const newest = (dir) =>
  readdirSync(dir, { withFileTypes: true }).reduce((max, entry) => {
    const path = join(dir, entry.name);
    return Math.max(max, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }, 0);

const output = 'dist/main.js';
const inputs = Math.max(newest('src'), statSync('package.json').mtimeMs, statSync('tsconfig.json').mtimeMs, statSync('tsconfig.build.json').mtimeMs);
if (!existsSync(output) || statSync(output).mtimeMs < inputs) {
  console.error('Building the gateway (tsc)...');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}

// The admin console (admin/ → dist/admin, bundled by esbuild).
const adminOutput = 'dist/admin/app.js';
const adminInputs = Math.max(newest('admin'), statSync('package.json').mtimeMs, statSync('scripts/build-admin.mjs').mtimeMs);
if (!existsSync(adminOutput) || statSync(adminOutput).mtimeMs < adminInputs) {
  console.error('Building the admin console (esbuild)...');
  execFileSync(process.execPath, ['scripts/build-admin.mjs'], { stdio: 'inherit' });
}
