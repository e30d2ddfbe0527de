#!/usr/bin/env node
// The published `flagshift` binary: runs the compiled CLI (`npm run build` writes dist/).
// Inside the repository, run the TypeScript sources instead: npm run flagshift -- <args>
import '../dist/bin/cli.js';
