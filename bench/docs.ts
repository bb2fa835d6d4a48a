// Writes a generated section of docs/benchmarks.md between two HTML comment markers, keeping the rest.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Replaces the text between `<!-- name:start -->` and `<!-- name:end -->` with `report`, or appends a
 * new section under `heading` where the markers are missing.
 */
export function writeDocsSection(name: string, heading: string, report: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const path = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
  const generated = `${start}\n${report}\n${end}`;
  let text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  if (text.includes(start) && text.includes(end)) {
    text = text.slice(0, text.indexOf(start)) + generated + text.slice(text.indexOf(end) + end.length);
  } else {
    text = `${text.trimEnd()}\n\n## ${heading}\n\n${generated}\n`;
  }
  mkdirSync(fileURLToPath(new URL('../docs/', import.meta.url)), { recursive: true });
  writeFileSync(path, text);
}
