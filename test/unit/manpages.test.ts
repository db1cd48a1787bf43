/**
 * The man pages render without a single groff warning, and document every flag each program's
 * --help lists (so the two cannot drift apart).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const groff = spawnSync('groff', ['-v'], { encoding: 'utf8' });
const noGroff = groff.status === 0 ? false : 'groff not installed (Debian: groff-base)';

/** Every option token in a --help text: -x, --json, also those inside [..] of commands. */
export function flagsOf(help: string): string[] {
  const out = new Set<string>();
  for (const m of help.matchAll(/(?:^|[\s[,(/])(--?[A-Za-z0-9][A-Za-z0-9-]*)/g)) out.add(m[1]!);
  return [...out].sort();
}

/** The roff source as plain text: `\-` is a minus, font escapes removed. */
function roffText(src: string): string {
  return src
    .replace(/\\f(\[[^\]]*\]|\(..|.)/g, '')
    .replace(/\\-/g, '-')
    .replace(/\\&/g, '');
}

const programs = [
  { bin: 'rubidiumd', page: 'man/rubidiumd.8', section: 'RUBIDIUMD(8)' },
  { bin: 'rubidiumc', page: 'man/rubidiumc.1', section: 'RUBIDIUMC(1)' },
];

for (const p of programs) {
  test(`man: ${p.page} renders with no groff warning`, { skip: noGroff }, () => {
    const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', join(root, p.page)], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.equal(r.stderr, '', `groff warnings:\n${r.stderr}`);
    assert.ok(r.stdout.includes(p.section), 'title line rendered');
    for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'SEE ALSO']) {
      assert.match(r.stdout.replace(/.\x08/g, ''), new RegExp(`^${s}$`, 'm'), `section ${s}`);
    }
  });

  test(`man: every flag of ${p.bin} --help is in ${p.page}`, () => {
    const r = spawnSync(process.execPath, [join(root, 'bin', p.bin), '--help'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    const flags = flagsOf(r.stdout);
    assert.ok(flags.length >= 8, `only ${flags.join(' ')} found in --help`);
    const text = roffText(readFileSync(join(root, p.page), 'utf8'));
    const missing = flags.filter((f) => !new RegExp(`(^|[^\\w-])${f}(?![\\w-])`, 'm').test(text));
    assert.deepEqual(missing, [], `flags in ${p.bin} --help but not in ${p.page}`);
  });
}

test('man: the flag extractor finds options and ignores hyphenated words', () => {
  assert.deepEqual(flagsOf('  -f FILE  read\n  -4 / -6  ip\n  sources [-a] [-v], random-walk, x--y\n      --json'), [
    '--json',
    '-4',
    '-6',
    '-a',
    '-f',
    '-v',
  ]);
});
