/**
 * The README's fresh-project guide, run verbatim against the built package: blocks marked
 * `<!-- file: fresh NAME -->` are written into a new project outside the repository, blocks
 * marked `<!-- run: fresh -->` run there in order (`npm install flagshift` installs the
 * built tarball).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildPackage,
  type FreshProject,
  freshProject,
  guideSteps,
  localScript,
  repositoryRoot,
} from '../support/package.js';

const readme = readFileSync(join(repositoryRoot, 'README.md'), 'utf8');
const steps = guideSteps(readme, 'fresh');

let project: FreshProject | undefined;

afterAll(async () => {
  await project?.remove();
});

describe('guide markers', () => {
  it('reads files and scripts in order, and installs the local tarball for flagshift', () => {
    const markdown = [
      '<!-- run: fresh -->',
      '```bash',
      '$ npm install flagshift pg',
      '```',
      '<!-- file: other a.js -->',
      '```js',
      'skipped',
      '```',
      '<!-- file: fresh src/a.mjs -->',
      '````js',
      'console.log(1);',
      '```',
      '````',
    ].join('\n');
    expect(guideSteps(markdown, 'fresh')).toEqual([
      { kind: 'run', script: '$ npm install flagshift pg' },
      { kind: 'file', path: 'src/a.mjs', content: 'console.log(1);\n```\n' },
    ]);
    expect(localScript('$ npm install flagshift pg\nnpx flagshift --help', '/t/f.tgz')).toBe(
      'npm install "/t/f.tgz" pg\nnpx flagshift --help',
    );
  });
});

describe("the README's fresh-project guide", () => {
  it('runs verbatim in a new project', async () => {
    expect(steps.some((step) => step.kind === 'run')).toBe(true);
    const tarball = await buildPackage();
    project = await freshProject('guide');
    for (const step of steps) {
      if (step.kind === 'file') {
        await project.write(step.path, step.content);
        continue;
      }
      const result = await project.run('bash', ['-euo', 'pipefail', '-c', localScript(step.script, tarball)]);
      expect(result.code, `${step.script}\n${result.stdout}\n${result.stderr}`).toBe(0);
    }
  }, 300_000);
});
