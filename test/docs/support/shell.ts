/** Shell command lines of the documentation, split into words without a shell. */

const VARIABLE = /^\$(?:\{(\w+)\}|(\w+))/;

/**
 * Splits a command line into words as sh does for the forms the documentation uses:
 * blanks separate words, '...' is literal, "..." and bare words expand `$NAME` and
 * `${NAME}` from `env`, and `#` at the start of a word begins a comment. A variable
 * `env` doesn't set is an error, so a command can't silently lose an argument.
 */
export function shellWords(line: string, env: Readonly<Record<string, string>>): string[] {
  const words: string[] = [];
  let word: string | undefined;
  const variable = (text: string): { value: string; length: number } => {
    const match = VARIABLE.exec(text);
    if (match === null) return { value: '$', length: 1 };
    const name = match[1] ?? match[2] ?? '';
    const value = env[name];
    if (value === undefined) throw new Error(`the command uses $${name}, which is not set: ${line}`);
    return { value, length: match[0].length };
  };
  const expand = (text: string): string => {
    let out = '';
    for (let i = 0; i < text.length; i++) {
      if (text[i] !== '$') {
        out += text[i];
        continue;
      }
      const { value, length } = variable(text.slice(i));
      out += value;
      i += length - 1;
    }
    return out;
  };
  for (let i = 0; i < line.length; i++) {
    const char = line[i] ?? '';
    if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (char === "'" || char === '"') {
      const end = line.indexOf(char, i + 1);
      if (end < 0) throw new Error(`unterminated ${char} in: ${line}`);
      const quoted = line.slice(i + 1, end);
      word = (word ?? '') + (char === '"' ? expand(quoted) : quoted);
      i = end;
    } else if (char === '#' && word === undefined) {
      break;
    } else if (char === '$') {
      const { value, length } = variable(line.slice(i));
      word = (word ?? '') + value;
      i += length - 1;
    } else {
      word = (word ?? '') + char;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
