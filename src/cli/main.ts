#!/usr/bin/env node
// The operator CLI, installed as the package's `llm-gateway` bin (dist/cli/main.js after
// `npm run build`; `npx tsx src/cli/main.ts` from a checkout). `llm-gateway --help` lists the commands.
import { runCli } from './program.js';

runCli(process.argv.slice(2), { out: process.stdout, err: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
    // Should a handle keep the event loop alive, still exit (the timer itself does not hold it).
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
