/**
 * Reads Markdown the way the documentation tests need it: fenced code blocks with the
 * HTML-comment markers on the lines before them, links, and GitHub's heading anchors.
 *
 * Markers (one comment per line, directly above the fence, several allowed):
 * - `<!-- run: clone -->`: a shell block run in a clone of this repository, or a `js`/`ts`
 *   block run as a module there;
 * - `<!-- run: fresh -->`: a shell block run in a fresh npm project;
 * - `<!-- file: fresh NAME -->`: a block the fresh project writes to the file NAME first.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** One fenced code block of a Markdown text. */
export interface FencedBlock {
  /** The info string's first word (`sh`, `ts`, `js`), or '' when the fence has none. */
  readonly lang: string;
  /** The text between the fences, ending with a newline. */
  readonly code: string;
  /** The markers on the lines right above the opening fence, in order (`run: clone`, `file: fresh migrate.mjs`). */
  readonly markers: readonly string[];
  /** The 1-based line of the opening fence. */
  readonly line: number;
}

const MARKER = /^<!--\s*((?:run|file):[^>]*?)\s*-->$/;
const FENCE = /^(`{3,}|~{3,})\s*([^\s`]*)/;

/** Every fenced code block of `markdown`, with its markers. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] ?? '');
    if (open === null) continue;
    const fence = open[1] ?? '```';
    const markers: string[] = [];
    for (let j = i - 1; j >= 0; j--) {
      const marker = MARKER.exec((lines[j] ?? '').trim());
      if (marker === null) break;
      markers.unshift((marker[1] ?? '').replace(/\s+/g, ' '));
    }
    const body: string[] = [];
    let end = i + 1;
    while (end < lines.length && !(lines[end] ?? '').trimStart().startsWith(fence)) body.push(lines[end++] ?? '');
    blocks.push({ lang: open[2] ?? '', code: body.length === 0 ? '' : `${body.join('\n')}\n`, markers, line: i + 1 });
    i = end;
  }
  return blocks;
}

/** The blocks that carry `marker` exactly (`run: clone`), or whose marker starts with it (`file: fresh`). */
export function markedBlocks(markdown: string, marker: string): FencedBlock[] {
  return fencedBlocks(markdown).filter((block) =>
    block.markers.some((m) => m === marker || m.startsWith(`${marker} `)),
  );
}

/** The lines outside fenced code blocks, as written. */
function proseLines(markdown: string): string[] {
  const kept: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const open = FENCE.exec(line.trimStart());
    if (fence === undefined && open !== null) fence = open[1];
    else if (fence !== undefined && line.trimStart().startsWith(fence)) fence = undefined;
    else if (fence === undefined) kept.push(line);
  }
  return kept;
}

/** The targets of the inline links (`[text](target)`) outside code, fenced or inline. */
export function linkTargets(markdown: string): string[] {
  const text = proseLines(markdown)
    .map((line) => line.replace(/`[^`]*`/g, '``'))
    .join('\n');
  return [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1] ?? '');
}

/** The anchors GitHub gives the headings of `markdown` (`## The six stages` -> `the-six-stages`). */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading === null) continue;
    const slug = (heading[1] ?? '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** README.md and every Markdown file under docs/ of the repository at `root`. */
export function documentationPages(root: string): string[] {
  const under = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return under(path);
      return name.endsWith('.md') ? [path] : [];
    });
  return [join(root, 'README.md'), ...under(join(root, 'docs'))];
}
