/**
 * The documentation's own shape, without a database: every relative link of README.md and
 * docs/**\/*.md resolves to a file (and its #anchor to a heading of a Markdown target),
 * and the README stays short enough to read in five minutes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { documentationPages, fencedBlocks, headingAnchors, linkTargets } from './support/markdown.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const pages = documentationPages(root);

/** What is wrong with `target` as written in `page`, or undefined when it resolves. */
function brokenLink(page: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // https:, mailto:
  const [path = '', anchor] = target.split('#');
  const file = path === '' ? page : resolve(dirname(page), decodeURIComponent(path));
  if (!existsSync(file)) {
    return `no file ${relative(root, file)}`;
  }
  if (anchor === undefined || anchor === '' || !file.endsWith('.md')) return undefined;
  return headingAnchors(readFileSync(file, 'utf8')).has(anchor)
    ? undefined
    : `no heading #${anchor} in ${relative(root, file)}`;
}

describe('documentation links', () => {
  it.each(pages.map((page) => [relative(root, page), page]))('%s: every relative link resolves', (_name, page) => {
    const broken = linkTargets(readFileSync(page, 'utf8')).flatMap((target) => {
      const problem = brokenLink(page, target);
      return problem === undefined ? [] : [`${target}: ${problem}`];
    });
    expect(broken).toEqual([]);
  });

  it('finds links and anchors as GitHub renders them', () => {
    const text =
      '## The `six` stages\n\n```md\n[not a link](nowhere.md)\n```\n\nSee [x](a.md#b) and `[y](c.md)`.\n## Kill\n## Kill\n';
    expect(linkTargets(text)).toEqual(['a.md#b']);
    expect([...headingAnchors(text)]).toEqual(['the-six-stages', 'kill', 'kill-1']);
    expect(brokenLink(join(root, 'README.md'), 'docs/STAGES.md#kill')).toBeUndefined();
    expect(brokenLink(join(root, 'README.md'), 'docs/STAGES.md#no-such-heading')).toMatch(/no heading/);
    expect(brokenLink(join(root, 'README.md'), 'docs/no-such-page.md')).toMatch(/no file/);
  });
});

describe('README.md', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');

  it('is under 20 KB, read in five minutes', () => {
    expect(Buffer.byteLength(readme)).toBeLessThan(20_000);
  });

  it('opens with the two commands: the demo, then the whole suite', () => {
    const [first, second] = fencedBlocks(readme);
    expect(first?.code).toBe('npm install && npm run demo\n');
    expect(second?.code).toBe('npm test\n');
  });

  it('shows the stage table before any stage name is used in its prose', () => {
    const table = readme.indexOf('| `off` |');
    expect(table).toBeGreaterThan(0);
    const before = readme.slice(0, readme.indexOf('## Stages'));
    expect(before).not.toMatch(/`(off|dualwrite|shadow|live|rampdown|complete)`/);
  });

  it('lists every entry point of package.json with the optional peers it names', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
      peerDependencies: Record<string, string>;
    };
    for (const entry of Object.keys(pkg.exports)) {
      const name = entry === '.' ? 'flagshift' : `flagshift/${entry.slice(2)}`;
      expect(readme, name).toContain(`| \`${name}\` |`);
    }
    for (const peer of Object.keys(pkg.peerDependencies)) expect(readme, peer).toContain(peer);
  });
});
