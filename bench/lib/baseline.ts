// `--baseline <git-ref>`: the production build of another commit, so issue 16's rows can be
// measured before and after in one run on the same machine. The ref is checked out in a detached
// git worktree under the OS temp dir (never inside the repository), with this checkout's
// node_modules linked in (`npm ci` would take minutes), and compiled with tsc.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, log } from './context.js';

export interface Baseline {
  /** The ref as given on the command line. */
  ref: string;
  /** The commit it resolved to (short). */
  commit: string;
  /** The worktree: its dist/main.js is the baseline gateway. */
  root: string;
  /** Removes the worktree (and its registration in this repository). */
  remove(): void;
}

const git = (args: string[], cwd = ROOT) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

export function prepareBaseline(ref: string): Baseline {
  const commit = git(['rev-parse', '--short', `${ref}^{commit}`]);
  const parent = mkdtempSync(join(tmpdir(), 'gateway-bench-baseline-'));
  const root = join(parent, 'tree');
  const remove = () => {
    try {
      git(['worktree', 'remove', '--force', root]);
    } catch {
      // Not registered (add failed): the directory alone goes.
    }
    rmSync(parent, { recursive: true, force: true });
  };
  try {
    log(`baseline: checking out ${ref} (${commit}) in ${root}`);
    git(['worktree', 'add', '--detach', root, commit]);
    // The dependencies of this checkout; a baseline whose lock file differs may not build with them.
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
    const t0 = performance.now();
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    if (!existsSync(join(root, 'dist', 'main.js'))) throw new Error('the build left no dist/main.js');
    log(`baseline: built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    remove();
    const out = (e as { stdout?: Buffer }).stdout?.toString().slice(0, 2000) ?? '';
    throw new Error(`--baseline ${ref}: ${String(e)}${out ? `\n${out}` : ''}`);
  }
  return { ref, commit, root, remove };
}
