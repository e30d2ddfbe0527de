/** A stylesheet bundled as its text (esbuild's `text` loader for `.css`, see dashboard-script.ts). */
declare module '*.css' {
  const text: string;
  export default text;
}
