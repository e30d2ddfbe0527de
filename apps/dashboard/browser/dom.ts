/**
 * Builds DOM nodes from values. Every value becomes a text node or an attribute value,
 * never markup: what the page shows comes from the database and from other processes, so
 * nothing here parses HTML (no `innerHTML`).
 */

/** What a node is built with: `null`, `undefined` and `false` are skipped (so `cond && node` works). */
export type Child = Node | string | number | boolean | null | undefined | readonly Child[];

/**
 * Attributes by name (`className` is `class`), `text` for the text content and `on<event>`
 * for listeners. `undefined`, `null` and `false` leave the attribute out.
 */
export type Props = Readonly<Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>>;

/** An HTML element with `props` and `children`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  setProps(node, props);
  appendChildren(node, children);
  return node;
}

function appendChildren(node: Element, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

function setProps(node: Element, props: Props | null | undefined): void {
  if (!props) return;
  for (const key of Object.keys(props)) {
    const value = props[key];
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key === 'className' ? 'class' : key, String(value));
  }
}
