import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIRECTIVE_STATUS, SOURCE_OPTION_STATUS, statusText } from '../../src/config/directive-status.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOC = fs.readFileSync(path.join(ROOT, 'docs', 'config.md'), 'utf8');

/** `| \`name\` | status | notes |` rows of the table following the `<!-- marker -->` comment. */
function docTable(marker: string): Map<string, string> {
  const start = DOC.indexOf(`<!-- ${marker} -->`);
  assert.ok(start >= 0, `docs/config.md has no <!-- ${marker} --> table`);
  const rows = new Map<string, string>();
  for (const line of DOC.slice(start).split('\n').slice(1)) {
    if (!line.startsWith('|')) {
      if (rows.size > 0) break;
      continue;
    }
    const m = /^\|\s*`([a-z0-9_]+)`\s*\|\s*(.*?)\s*\|/.exec(line);
    if (!m) continue; // header and separator rows
    assert.ok(!rows.has(m[1]!), `docs/config.md: ${m[1]} listed twice`);
    rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

function compare(marker: string, code: Record<string, string>): void {
  const doc = docTable(marker);
  const problems: string[] = [];
  for (const [name, status] of Object.entries(code)) {
    const d = doc.get(name);
    if (d === undefined) problems.push(`missing row: | \`${name}\` | ${status} |`);
    else if (d !== status) problems.push(`${name}: docs say "${d}", code says "${status}"`);
  }
  for (const name of doc.keys())
    if (!(name in code)) problems.push(`${name}: in docs/config.md, not in the code table`);
  assert.deepEqual(problems, []);
}

test('docs/config.md states the status of every chrony.conf directive as the code does', () => {
  compare('directives', Object.fromEntries(Object.entries(DIRECTIVE_STATUS).map(([k, s]) => [k, statusText(s)])));
});

test('docs/config.md states the status of every server/pool option as the code does', () => {
  compare(
    'source options',
    Object.fromEntries(Object.entries(SOURCE_OPTION_STATUS).map(([k, s]) => [k, statusText(s.status)])),
  );
});

test("the code table covers chrony 4.8's complete directive list (94 names, 4 obsolete)", () => {
  // chrony 4.8 conf.c, CNF_ParseLine: every name it accepts.
  const chrony48 = `include confdir acquisitionport allow authselectmode bindacqaddress bindacqdevice bindaddress
    bindcmdaddress bindcmddevice binddevice broadcast clientloglimit clockprecision cmdallow cmddeny cmdport
    cmdratelimit combinelimit corrtimeratio deny driftfile dscp dumpdir dumponexit fallbackdrift hwclockfile
    hwtimestamp hwtstimeout initstepslew keyfile leapsecmode leapsectz leapseclist local lock_all log logbanner
    logchange logdir mailonchange makestep manual maxchange maxclockerror maxdistance maxdrift maxjitter
    maxntsconnections maxsamples maxslewrate maxupdateskew minsamples minsources nocerttimecheck noclientlog
    nosystemcert ntpsigndsocket ntsaeads ntsratelimit ntscachedir ntsdumpdir ntsntpserver ntsport ntsprocesses
    ntsrefresh ntsrotate ntsservercert ntsserverkey ntstrustedcerts opencommands peer pidfile pool port ptpdomain
    ptpport ratelimit refclock refresh reselectdist rtcautotrim rtcdevice rtcfile rtconutc rtcsync
    sched_priority server smoothtime sourcedir stratumweight tempcomp user commandkey generatecommandkey
    linux_freq_scale linux_hz maxtxbuffers`.split(/\s+/);
  assert.deepEqual([...new Set(chrony48)].sort(), Object.keys(DIRECTIVE_STATUS).sort());
});
