import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../src/config/chrony-conf.js';
import { parseNtpConfText } from '../../src/config/ntp-conf.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Block {
  lang: string;
  text: string;
  where: string; // file:line of the block's first line
}

/** Fenced code blocks (``` or ~~~) of a Markdown file, with their info string. */
export function fencedBlocks(md: string, file: string): Block[] {
  const out: Block[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*(```+|~~~+)\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j]!.trim().startsWith(fence)) body.push(lines[j++]!);
    out.push({ lang: open[2]!.toLowerCase(), text: body.join('\n'), where: `${file}:${i + 2}` });
    i = j;
  }
  return out;
}

function docFiles(): string[] {
  const docs = fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join('docs', f));
  return ['README.md', ...docs].filter((f) => fs.existsSync(path.join(ROOT, f)));
}

test('the fence scanner finds tagged blocks and their place', () => {
  const b = fencedBlocks('x\n```chrony.conf\nserver a\n```\n```sh\nls\n```\n', 'f.md');
  assert.deepEqual(b, [
    { lang: 'chrony.conf', text: 'server a', where: 'f.md:3' },
    { lang: 'sh', text: 'ls', where: 'f.md:6' },
  ]);
});

test('every ```chrony.conf and ```ntp.conf example in README.md and docs/*.md parses', () => {
  let chrony = 0;
  let ntp = 0;
  const noFiles = { readFile: () => '', readdir: () => [] };
  for (const f of docFiles()) {
    for (const b of fencedBlocks(fs.readFileSync(path.join(ROOT, f), 'utf8'), f)) {
      if (b.lang === 'chrony.conf') {
        chrony++;
        // Errors carry "file:line" of the block (the block's first line is line 1).
        const c = parseConfigText(b.text, b.where, { fs: noFiles });
        assert.deepEqual(c.warnings, [], `${b.where}: an example should not need warnings`);
      } else if (b.lang === 'ntp.conf') {
        ntp++;
        parseNtpConfText(b.text, b.where);
      }
    }
  }
  // docs/config.md alone has three chrony.conf examples and one ntp.conf example.
  assert.ok(chrony >= 3, `only ${chrony} chrony.conf examples found`);
  assert.ok(ntp >= 1, `only ${ntp} ntp.conf examples found`);
});
