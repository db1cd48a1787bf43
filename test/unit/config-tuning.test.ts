import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  DEFAULT_SOURCE_OPTIONS,
  type Config,
  formatConfig,
  parseConfigText,
} from '../../src/config/chrony-conf.js';
import { DIRECTIVE_STATUS, SOURCE_OPTION_STATUS } from '../../src/config/directive-status.js';
import {
  acquisitionAddress,
  clientLogEntries,
  disciplineTuning,
  precisionLog2,
  serverTuning,
  sourceTuning,
} from '../../src/config/engine-options.js';
import { MaxChangeGuard } from '../../src/discipline/maxchange.js';
import { tuneSample } from '../../src/discipline/sample-tuning.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function throwsAt(text: string, re: RegExp): void {
  assert.throws(
    () => parseConfigText(text, 't.conf'),
    (e: unknown) => e instanceof ConfigError && re.test(e.message),
  );
}

const TUNED = `server ntp1.example.net iburst maxdelayratio 3 maxdelaydevratio 5 offset -0.00005 minstratum 3 minsamples 8 maxsamples 32 ipv6
pool pool.example.net ipv4
maxupdateskew 100
corrtimeratio 10
maxslewrate 500
maxdrift 1000
maxclockerror 10
clockprecision 8e-9
combinelimit 2
maxjitter 0.5
reselectdist 0.001
stratumweight 0.01
maxchange 1000 1 2
minsamples 6
maxsamples 16
clientloglimit 1048576
noclientlog
ratelimit interval 1 burst 16
acquisitionport 1123
bindacqaddress 192.0.2.5
bindacqaddress 2001:db8::5
`;

test('tuning directives and source options parse into Config', () => {
  const c = parseConfigText(TUNED, 'tuned.conf');
  assert.deepEqual(c.warnings, []);
  assert.equal(c.maxupdateskew, 100);
  assert.equal(c.corrtimeratio, 10);
  assert.equal(c.maxslewrate, 500);
  assert.equal(c.maxdrift, 1000);
  assert.equal(c.maxclockerror, 10);
  assert.equal(c.clockprecision, 8e-9);
  assert.equal(c.combinelimit, 2);
  assert.equal(c.maxjitter, 0.5);
  assert.equal(c.reselectdist, 0.001);
  assert.equal(c.stratumweight, 0.01);
  assert.deepEqual(c.maxchange, { offset: 1000, start: 1, ignore: 2 });
  assert.equal(c.minsamples, 6);
  assert.equal(c.maxsamples, 16);
  assert.equal(c.clientloglimit, 1048576);
  assert.equal(c.noclientlog, true);
  assert.deepEqual(c.ratelimit, { interval: 1, burst: 16, leak: 2, kod: 0 });
  assert.equal(c.acquisitionport, 1123);
  assert.deepEqual(c.bindacqaddress, ['192.0.2.5', '2001:db8::5']);
  const o = c.sources[0]!.options;
  assert.equal(o.maxdelayratio, 3);
  assert.equal(o.maxdelaydevratio, 5);
  assert.equal(o.offset, -0.00005);
  assert.equal(o.minstratum, 3);
  assert.equal(o.minsamples, 8);
  assert.equal(o.maxsamples, 32);
  assert.equal(o.family, 6);
  assert.equal(c.sources[1]!.options.family, 4);
  // chrony's defaults when absent.
  const d = parseConfigText('', 'e.conf');
  assert.equal(d.maxupdateskew, 1000);
  assert.equal(d.clientloglimit, 524288);
  assert.equal(d.ratelimit, null);
  assert.deepEqual(parseConfigText('ratelimit', 'r').ratelimit, { interval: 3, burst: 8, leak: 2, kod: 0 });
  assert.deepEqual(parseConfigText('ratelimit kod 2 leak 4', 'r').ratelimit, {
    interval: 3,
    burst: 8,
    leak: 4,
    kod: 2,
  });
  assert.deepEqual(parseConfigText('bindacqaddress 192.0.2.1\nbindacqaddress 192.0.2.2', 'b').bindacqaddress, [
    '192.0.2.2',
  ]);
});

test('bad tuning values are errors naming file:line', () => {
  throwsAt('maxupdateskew -1', /^t\.conf:1: invalid maxupdateskew '-1' \(must be at least 0\)$/);
  throwsAt('\nmaxchange 1000 1', /^t\.conf:2: missing arguments for maxchange directive$/);
  throwsAt('ratelimit interval 13', /^t\.conf:1: invalid ratelimit interval '13' \(must be -19\.\.12\)$/);
  throwsAt('ratelimit burst 0', /invalid ratelimit burst '0'/);
  throwsAt('ratelimit leak', /missing value for ratelimit option 'leak'/);
  throwsAt('ratelimit foo 1', /unknown ratelimit option 'foo'/);
  throwsAt('noclientlog 1', /too many arguments for noclientlog directive/);
  throwsAt('maxsamples 2', /invalid maxsamples '2' \(must be 0 or 4\.\.64\)/);
  throwsAt('clockprecision 0', /invalid clockprecision '0'/);
  throwsAt('bindacqaddress host.example', /invalid bindacqaddress 'host\.example'/);
  throwsAt('acquisitionport 65536', /invalid acquisitionport '65536'/);
  throwsAt('server a maxdelayratio 0.5', /^t\.conf:1: invalid maxdelayratio '0\.5' \(must be at least 1\)$/);
  throwsAt('server a minstratum 16', /invalid minstratum '16'/);
  throwsAt('server a offset', /missing value for server option 'offset'/);
  throwsAt('driftfile /x 3600', /invalid driftfile directive/);
});

test('initstepslew becomes makestep threshold 1 plus iburst servers for hosts not configured', () => {
  const c = parseConfigText('server a.example\ninitstepslew 30 a.example b.example\n', 'i.conf');
  assert.deepEqual(c.makestep, { threshold: 30, limit: 1 });
  assert.deepEqual(
    c.sources.map((s) => [s.host, s.options.iburst]),
    [
      ['a.example', false],
      ['b.example', true],
    ],
  );
  const d = parseConfigText('makestep 0.1 3\ninitstepslew 30 a.example\n', 'i.conf');
  assert.deepEqual(d.makestep, { threshold: 0.1, limit: 3 });
});

function strip(c: Config): unknown {
  return { ...c, sources: c.sources.map((s) => ({ ...s, origin: '' })), warnings: [], sourcedirs: [] };
}

test('every field prints back (rubidiumd -p) and re-parses to the same Config', () => {
  for (const text of [TUNED, 'ratelimit interval -4 burst 255 leak 1 kod 4\nmaxchange -1 0 0\n']) {
    const c = parseConfigText(text, 'x.conf');
    const printed = formatConfig(c);
    assert.deepEqual(strip(parseConfigText(printed, 'y.conf')), strip(c), printed);
  }
  const printed = formatConfig(parseConfigText(TUNED, 'x.conf'));
  assert.match(
    printed,
    /^server ntp1\.example\.net iburst maxdelayratio 3 maxdelaydevratio 5 offset -0\.00005 minstratum 3 minsamples 8 maxsamples 32 ipv6$/m,
  );
  assert.match(printed, /^ratelimit interval 1 burst 16 leak 2$/m);
  // Defaults are not printed.
  assert.equal(formatConfig(parseConfigText('maxupdateskew 1000\nserver a maxdelaydevratio 10\n', 'z')), 'server a\n');
});

test('config → engine options', () => {
  const c = parseConfigText(TUNED, 'x.conf');
  const d = disciplineTuning(c);
  assert.equal(d.maxupdateskew, 100);
  assert.deepEqual(d.maxchange, { offset: 1000, start: 1, ignore: 2 });
  assert.equal(d.maxSamples, 16);
  assert.equal(d.minSamples, 6);
  assert.equal(d.stratumweight, 0.01);
  assert.deepEqual(serverTuning(c), {
    clientLogLimit: 8192,
    noclientlog: true,
    ratelimit: { interval: 1, burst: 16, leak: 2, kod: 0 },
  });
  assert.equal(clientLogEntries(524288), 4096);
  // chrony: 1920 bytes per 16-record slot, slots rounded down to a power of 2 (520 → 512).
  assert.equal(clientLogEntries(1000000), 8192);
  assert.equal(clientLogEntries(1920 * 1024 - 1), 8192);
  assert.equal(clientLogEntries(1920 * 1024), 16384);
  assert.equal(clientLogEntries(100), 16); // at least one slot
  assert.equal(clientLogEntries(1920 * 65536), 2 ** 20); // enough for 1M clients: 120 MiB
  assert.equal(clientLogEntries(2 ** 32 - 1), 2 ** 24);
  assert.equal(precisionLog2(c, -20), -27);
  assert.equal(precisionLog2(parseConfigText('', 'e'), -20), -20);
  assert.deepEqual(sourceTuning(c.sources[0]!.options), {
    maxdelayratio: 3,
    maxdelaydevratio: 5,
    minsamples: 8,
    maxsamples: 32,
    offset: -0.00005,
    minstratum: 3,
  });
  assert.deepEqual(sourceTuning(DEFAULT_SOURCE_OPTIONS), {});
  assert.equal(acquisitionAddress(c, 4), '192.0.2.5');
  assert.equal(acquisitionAddress(c, 6), '2001:db8::5');
  assert.equal(acquisitionAddress(parseConfigText('', 'e'), 6), '::');
});

/** Arguments that pass the owners' own validation for directives the table does not exemplify. */
const SAMPLE_ARGS: Record<string, string> = { mailonchange: 'root@localhost 0.5' };

test('every directive behaves as its status says: works = no warning, fatal = error, else warning or silence', () => {
  for (const [name, st] of Object.entries(DIRECTIVE_STATUS)) {
    const line = `${name} ${st.kind === 'works' ? st.example : (SAMPLE_ARGS[name] ?? 'x')}`;
    if (name === 'include' || name === 'confdir' || name === 'sourcedir') continue; // need files; config.test.ts
    if (st.kind === 'works') {
      const c = parseConfigText(line, 's.conf', { fs: { readFile: () => '', readdir: () => [] } });
      assert.deepEqual(c.warnings, [], line);
    } else if ((st.kind === 'planned' || st.kind === 'refused') && st.fatal) {
      throwsAt(line, new RegExp(`^t\\.conf:1: directive '${name}' is not supported`));
    } else {
      const c = parseConfigText(line, 's.conf');
      if (st.kind === 'no effect') assert.deepEqual(c.warnings, [], line);
      else assert.equal(c.warnings.length, 1, line);
    }
  }
  for (const [name, { status: st, values }] of Object.entries(SOURCE_OPTION_STATUS)) {
    const type = name === 'maxsources' ? 'pool' : 'server';
    const arg = st.kind === 'works' ? st.example : values > 0 ? '1' : '';
    const line = `${type} a ${name} ${arg} iburst`;
    if (st.kind === 'works') {
      const c = parseConfigText(line, 's.conf');
      assert.deepEqual(c.warnings, [], line);
      assert.equal(c.sources[0]!.options.iburst, true, line); // the value was consumed
    } else if ((st.kind === 'planned' || st.kind === 'refused') && st.fatal) {
      throwsAt(line, new RegExp(`^t\\.conf:1: ${type} option '${name}' is not supported`));
    } else {
      const c = parseConfigText(line, 's.conf');
      assert.equal(c.warnings.length, 1, line);
      assert.equal(c.sources[0]!.options.iburst, true, line);
    }
  }
});

test("Debian's default /etc/chrony/chrony.conf loads with rubidiumd -p (only warnings)", (t) => {
  const file = '/etc/chrony/chrony.conf';
  if (!fs.existsSync(file)) return t.skip('no /etc/chrony/chrony.conf on this machine');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'rubidiumd'), '-f', file, '-p'], {
    encoding: 'utf8',
    timeout: 20000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^pool 2\.debian\.pool\.ntp\.org iburst$/m);
  assert.match(r.stdout, /^maxupdateskew 100$/m);
  assert.match(r.stdout, /^makestep 1 3$/m);
  assert.match(r.stdout, /^driftfile \/var\/lib\/chrony\/chrony\.drift$/m);
  assert.match(r.stdout, /^ntsdumpdir \/var\/lib\/chrony$/m); // parsed and printed back (NTS, issue 5)
});

test('maxchange guard: ignores `ignore` large offsets after `start` updates, then keeps refusing', () => {
  const g = new MaxChangeGuard({ offset: 1, start: 2, ignore: 2 });
  assert.equal(g.accept(100, 0), true); // before `start` updates: anything goes
  assert.equal(g.accept(100, 1), true);
  assert.equal(g.accept(-5, 2), false);
  assert.equal(g.accept(5, 3), false);
  assert.equal(g.exceeded, 0);
  assert.equal(g.accept(5, 4), false); // chronyd would exit here
  assert.equal(g.exceeded, 1);
  assert.equal(g.accept(0.5, 5), true);
  const any = new MaxChangeGuard({ offset: -1, start: 0, ignore: 0 });
  for (let i = 0; i < 5; i++) assert.equal(any.accept(2, i), false);
  assert.equal(any.exceeded, 0);
});

test('sample tuning: offset and minstratum applied, nothing else changed', () => {
  const s = {
    time: 1n,
    offset: 0.001,
    delay: 0.01,
    dispersion: 0,
    rootDelay: 0,
    rootDispersion: 0,
    stratum: 1,
    leap: 0 as const,
    refId: 0,
    refTime: 0n,
    poll: 6,
    interleaved: false,
  };
  assert.equal(tuneSample(s, undefined), s);
  assert.equal(tuneSample(s, { maxdelayratio: 2 }), s);
  assert.deepEqual(tuneSample(s, { offset: -0.0005, minstratum: 3 }), { ...s, offset: 0.0005, stratum: 3 });
  assert.deepEqual(tuneSample({ ...s, stratum: 5 }, { minstratum: 3 }).stratum, 5);
});
