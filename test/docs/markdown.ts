// Markdown code blocks for the docs tests: each fenced block with its language, its line and the
// `<!-- file: PATH -->` or `<!-- write: PATH -->` comment right before it.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A fenced code block of a Markdown file. */
export interface CodeBlock {
  /** The Markdown file, relative to the project. */
  doc: string;
  /** The line of the opening fence (1-based). */
  line: number;
  /** The info string's first word, lower-cased: 'ts', 'sh', ... ('' when there is none). */
  lang: string;
  /** The value of a `<!-- file: PATH -->` or `<!-- write: PATH -->` comment on the line before. */
  file: string | null;
  /** `file` for a copy of a project file, `write` for a file the reader is told to create. */
  marker: 'file' | 'write' | null;
  code: string;
}

/** The fenced blocks of one Markdown file, with the marker comment before each. */
export function extractBlocks(doc: string, text: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+|~~~+)\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j]!.trimStart().startsWith(fence!)) {
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!);
      j++;
    }
    let previous = i - 1;
    while (previous >= 0 && lines[previous]!.trim() === '') previous--;
    const marker = previous >= 0 ? /^<!--\s*(file|write):\s*(\S+)\s*-->$/.exec(lines[previous]!.trim()) : null;
    blocks.push({
      doc,
      line: i + 1,
      lang: lang!.toLowerCase(),
      file: marker ? marker[2]! : null,
      marker: marker ? (marker[1] as 'file' | 'write') : null,
      code: body.join('\n') + '\n',
    });
    i = j;
  }
  return blocks;
}

/** README.md and every Markdown file of docs/ (not the generated docs/api). */
export function docFiles(): string[] {
  const files = ['README.md'];
  const docs = join(root, 'docs');
  if (existsSync(docs)) {
    for (const name of readdirSync(docs).sort()) if (name.endsWith('.md')) files.push(`docs/${name}`);
  }
  return files;
}

/**
 * The hidden context of a doc's code blocks: the body of a `<!-- context:ts ... -->` comment,
 * ambient declarations (`declare const socket: import('node:stream').Duplex;`) that let a block
 * show a fragment that uses them. Null when the doc has none.
 */
export function extractContext(text: string): { line: number; code: string } | null {
  const start = text.indexOf('<!-- context:ts');
  if (start === -1) return null;
  const bodyStart = text.indexOf('\n', start) + 1;
  const end = text.indexOf('-->', bodyStart);
  if (bodyStart === 0 || end === -1) return null;
  return { line: text.slice(0, bodyStart).split('\n').length, code: text.slice(bodyStart, end) };
}
