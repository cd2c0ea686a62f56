// A vitest reporter that ends the run's summary with the optional services that were missing and
// the test groups skipped because of them. Groups say why in their name (`[skipped: TEST_REDIS_URL
// unset]`, `(skipped: /usr/bin/chromium is not installed)`), so the reasons come from the tests.
import { existsSync } from 'node:fs';
import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

const MARKER = /[[(,]\s*skipped: ([^\])]+)[\])]/;

/** The optional services the suite can use, and whether this run has them. */
export function optionalServices(env: NodeJS.ProcessEnv = process.env): Array<{ service: string; present: boolean; how: string }> {
  const set = (name: string) => Boolean(env[name]?.trim());
  return [
    { service: 'PostgreSQL', present: set('TEST_POSTGRES_URL'), how: 'TEST_POSTGRES_URL' },
    { service: 'Redis', present: set('TEST_REDIS_URL'), how: 'TEST_REDIS_URL' },
    { service: 'Chromium', present: existsSync('/usr/bin/chromium'), how: '/usr/bin/chromium' },
  ];
}

/** The skip reason in the name of the outermost group (or test) that gives one, with that group's path. */
function skipReasonOf(test: TestCase): { reason: string; group: string } | undefined {
  const chain: string[] = [];
  for (let node: TestCase | TestSuite | TestModule = test; node.type !== 'module'; node = node.parent) chain.unshift(node.name);
  const at = chain.findIndex((name) => MARKER.test(name));
  if (at < 0) return undefined;
  return { reason: MARKER.exec(chain[at])![1].trim(), group: `${test.module.relativeModuleId} > ${chain.slice(0, at + 1).join(' > ')}` };
}

/** Skip reasons with their groups and test counts, from finished test modules. */
export function skippedForServices(modules: ReadonlyArray<TestModule>): Map<string, Map<string, number>> {
  const byReason = new Map<string, Map<string, number>>();
  for (const module of modules) {
    for (const test of module.children.allTests('skipped')) {
      const hit = skipReasonOf(test);
      if (!hit) continue;
      const groups = byReason.get(hit.reason) ?? new Map<string, number>();
      groups.set(hit.group, (groups.get(hit.group) ?? 0) + 1);
      byReason.set(hit.reason, groups);
    }
  }
  return byReason;
}

export default class OptionalServicesReporter implements Reporter {
  private log: (text: string) => void = (text) => console.log(text);

  onInit(vitest: Parameters<NonNullable<Reporter['onInit']>>[0]): void {
    this.log = (text) => vitest.logger.log(text);
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const missing = optionalServices().filter((s) => !s.present);
    const skipped = skippedForServices(modules);
    if (missing.length === 0 && skipped.size === 0) return;
    const lines = [''];
    lines.push(missing.length ? `Optional services missing: ${missing.map((s) => `${s.service} (${s.how})`).join(', ')}` : 'Optional services: all present');
    for (const [reason, groups] of skipped) {
      const tests = [...groups.values()].reduce((a, b) => a + b, 0);
      lines.push(`  skipped, ${reason}: ${tests} test${tests === 1 ? '' : 's'} in ${groups.size} group${groups.size === 1 ? '' : 's'}`);
      for (const [group, n] of [...groups].sort(([a], [b]) => a.localeCompare(b))) lines.push(`    ${group} (${n})`);
    }
    this.log(lines.join('\n'));
  }
}
