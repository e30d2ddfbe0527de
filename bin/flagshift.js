#!/usr/bin/env node
// The published `flagshift` binary: runs the compiled CLI (`npm run build` writes dist/).
// Inside the repository, run the TypeScript sources instead: npm run flagshift -- <args>
import { existsSync } from 'node:fs';

const cli = new URL('../dist/apps/cli/cli.js', import.meta.url);
if (existsSync(cli)) {
  await import(cli.href);
} else {
  // A clone of the repository has no dist/ until it is built: say so instead of a module-not-found stack.
  process.stderr.write(
    'flagshift: error: the CLI is not built (dist/apps/cli/cli.js is missing): run `npm run build` first, or inside the repository run `npm run flagshift -- <args>`\n',
  );
  process.exitCode = 1;
}
