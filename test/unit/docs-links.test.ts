import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** GitHub's heading anchor (github-slugger): lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function slugsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const slugs = new Set<string>();
  for (const line of withoutFences(markdown).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    slugs.add(n ? `${base}-${n}` : base);
  }
  return slugs;
}

/** Fenced code blocks removed: a `#` line in a shell block is not a heading. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** Fenced blocks and inline code removed, so code that happens to contain `](` is not read as a link. */
function withoutCode(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, '');
}

/** Every relative link target of a markdown text (`](target)`), http(s) and mailto left out. */
function linksOf(markdown: string): string[] {
  const out: string[] = [];
  for (const m of withoutCode(markdown).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    if (!/^(https?:|mailto:)/i.test(m[1])) out.push(m[1]);
  }
  return out;
}

/** Broken links of one markdown file: a missing file, or an anchor no heading of the target has. */
export function brokenLinks(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const broken: string[] = [];
  for (const link of linksOf(text)) {
    const [path, anchor] = link.split('#', 2) as [string, string | undefined];
    const target = path ? resolve(dirname(file), decodeURIComponent(path)) : file;
    if (!existsSync(target)) {
      broken.push(`${link}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!target.endsWith('.md') || statSync(target).isDirectory()) {
      broken.push(`${link}: anchor into a file that is not markdown`);
      continue;
    }
    if (!slugsOf(readFileSync(target, 'utf8')).has(decodeURIComponent(anchor).toLowerCase())) broken.push(`${link}: no heading #${anchor}`);
  }
  return broken;
}

/** The project's own markdown: README, docs/, examples/, bench/ and any other tracked folder. */
function markdownFiles(dir = ROOT): string[] {
  const skip = new Set(['node_modules', 'dist', 'data', 'test-artifacts', 'coverage']);
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith('.') || skip.has(e.name)) return [];
    const p = join(dir, e.name);
    if (e.isDirectory()) return markdownFiles(p);
    return e.name.endsWith('.md') ? [p] : [];
  });
}

describe('docs links', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'docs-links-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('computes anchors as GitHub does', () => {
    const slugs = slugsOf(
      [
        '# LLM GraphQL gateway',
        "## Ollama's own API",
        '## Command line: `llm-gateway`',
        '## Scaling out: several gateways, several Ollama hosts',
        '### Stream tokens over websockets (graphql-ws)',
        '## Errors',
        '## Errors',
        '```sh',
        '# a shell comment, not a heading',
        '```',
      ].join('\n'),
    );
    expect([...slugs]).toEqual([
      'llm-graphql-gateway',
      'ollamas-own-api',
      'command-line-llm-gateway',
      'scaling-out-several-gateways-several-ollama-hosts',
      'stream-tokens-over-websockets-graphql-ws',
      'errors',
      'errors-1',
    ]);
  });

  it('reports a missing file, a missing anchor and a wrong relative path, and ignores code and web links', () => {
    writeFileSync(join(tmp, 'target.md'), '# Target\n## A section\n');
    const doc = join(tmp, 'doc.md');
    writeFileSync(
      doc,
      [
        '[ok](target.md) [ok anchor](target.md#a-section) [here](#local) [web](https://example.com/x#y)',
        '## Local',
        '[gone](missing.md) [no anchor](target.md#nowhere) [moved](../target.md) [bad local](#nothing)',
        '`[inline](not-a-link.md)`',
        '```ts',
        'const f = fns[0](missing.md);',
        '```',
      ].join('\n'),
    );
    expect(brokenLinks(doc)).toEqual([
      'missing.md: no such file',
      'target.md#nowhere: no heading #nowhere',
      '../target.md: no such file',
      '#nothing: no heading #nothing',
    ]);
  });

  it('finds the project markdown it checks', () => {
    const files = markdownFiles().map((f) => relative(ROOT, f));
    expect(files).toEqual(expect.arrayContaining(['README.md', 'docs/api.md', 'docs/operations.md', 'docs/performance.md', 'docs/design.md', 'docs/security.md', 'examples/README.md', 'bench/README.md']));
  });

  it('every relative link in the project markdown resolves, anchors included', () => {
    const broken = markdownFiles().flatMap((f) => brokenLinks(f).map((b) => `${relative(ROOT, f)}: ${b}`));
    expect(broken).toEqual([]);
  });

  it('the README stays a first page: the two commands in its first 60 lines, the rest in docs/', () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
    const first = lines.slice(0, 60);
    expect(first.some((l) => /^npm install && npm start(\s|$)/.test(l))).toBe(true);
    expect(first.some((l) => /^npm test(\s|$)/.test(l))).toBe(true);
    expect(lines.length).toBeLessThanOrEqual(120);
  });
});
