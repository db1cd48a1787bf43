import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/chrony-conf.js';
import {
  detectConfigDialect,
  formatNtpConfig,
  isFromNtpConf,
  parseKeyList,
  parseNtpConf,
  parseNtpConfText,
} from '../../src/config/ntp-conf.js';
import { ntpConfToChrony } from '../../src/config/ntp-to-chrony.js';

const FULL = `# NTPsec-style
driftfile /var/lib/ntp/ntp.drift   # trailing comment
leapfile "/usr/share/zoneinfo/leap-seconds.list"
statsdir /var/log/ntpstats/
statistics loopstats peerstats
filegen loopstats file loopstats type day enable
server 192.0.2.1 iburst minpoll 4 maxpoll 8 prefer version 3 bias 0.001
server [2001:db8::1] noselect true
pool pool.example.org iburst preempt
peer 192.0.2.9
tos minsane 2 maxdist 1.5 orphanwait 60 orphan 8 minclock 3
tinker step 0.5 panic 0
keys /etc/ntp.keys
trustedkey 1 (3 ... 5)
controlkey 4
interface listen 192.0.2.100
disable monitor
restrict default kod limited nomodify noquery
restrict 127.0.0.1
restrict -6 ::1
restrict 10.0.0.0 mask 255.0.0.0 ignore
`;

test('parses a full ntp.conf into Config', () => {
  const c = parseNtpConfText(FULL, 'ntp.conf');
  assert.ok(isFromNtpConf(c));
  assert.equal(c.driftfile, '/var/lib/ntp/ntp.drift');
  assert.equal(c.leapseclist, '/usr/share/zoneinfo/leap-seconds.list');
  assert.equal(c.statsdir, '/var/log/ntpstats/');
  assert.deepEqual(c.statistics, ['loopstats', 'peerstats']);
  assert.deepEqual(c.filegen.loopstats, { file: 'loopstats', type: 'day', enable: true });
  assert.deepEqual(
    c.sources.map((s) => [s.type, s.host]),
    [
      ['server', '192.0.2.1'],
      ['server', '2001:db8::1'],
      ['pool', 'pool.example.org'],
      ['server', '192.0.2.9'],
    ],
  );
  const o = c.sources[0]!.options;
  assert.deepEqual([o.iburst, o.minpoll, o.maxpoll, o.prefer, o.version, o.offset], [true, 4, 8, true, 3, 0.001]);
  assert.equal(c.sources[1]!.options.trust, true);
  assert.ok(c.warnings.some((w) => /ntp\.conf:10: peer 192\.0\.2\.9: symmetric mode/.test(w)));
  assert.equal(c.minsources, 2);
  assert.equal(c.maxdistance, 1.5);
  assert.deepEqual(c.local, { stratum: 8, orphan: true, distance: 1, waitunsynced: 60 });
  assert.deepEqual(c.makestep, { threshold: 0.5, limit: -1 });
  assert.equal(c.keyfile, '/etc/ntp.keys');
  assert.deepEqual(c.trustedkeys, [1, 3, 4, 5]);
  assert.equal(c.controlkey, 4);
  assert.deepEqual(c.bindaddress, ['192.0.2.100']);
  assert.equal(c.noclientlog, true);
  assert.equal(c.restrict.length, 4);
  assert.deepEqual(c.restrict[3], {
    kind: 'address',
    address: '10.0.0.0',
    prefix: 8,
    family: 4,
    flags: ['ignore'],
    unrestrict: false,
    origin: 'ntp.conf:21',
  });
  assert.ok(c.ratelimit, 'limited turns the rate limiter on');
  assert.ok(c.warnings.some((w) => w.startsWith('ntp.conf:11: tos minclock')));
});

test('tinker step defaults and step 0', () => {
  assert.deepEqual(parseNtpConfText('server 192.0.2.1', 'a').makestep, { threshold: 0.128, limit: -1 });
  assert.equal(parseNtpConfText('tinker step 0', 'a').makestep, null);
});

test('errors name file:line', () => {
  const bad: Array<[string, RegExp]> = [
    ['server 192.0.2.1\nfrobnicate 3', /^a:2: unknown directive 'frobnicate'$/],
    ['server 127.127.28.0', /^a:1: reference clocks are not supported yet \(planned\)$/],
    ['server 127.127.1.0', /LOCAL clock driver use `tos orphan/],
    ['refclock shm unit 0', /^a:1: reference clocks are not supported yet/],
    ['fudge 127.127.28.0 time1 0.1', /^a:1: reference clocks/],
    ['server time.example.com nts', /^a:1: server option 'nts'/],
    ['server 192.0.2.1 minpoll 9 maxpoll 6', /minpoll 9 is greater than maxpoll 6/],
    ['server 192.0.2.1 minpoll x', /^a:1: invalid minpoll 'x'/],
    ['\n\nrestrict 10.0.0.0 mask 255.0.255.0', /^a:3: mask '255.0.255.0' is not contiguous$/],
    ['tos bogus 3', /^a:1: unknown tos option 'bogus'/],
    ['tinker step', /tinker takes KEYWORD VALUE pairs/],
    ['broadcastclient', /^a:1: broadcast mode is not supported/],
    ['trustedkey (5 ... 2)', /trustedkey range end/],
    ['filegen loopstats type hourly', /invalid filegen type 'hourly'/],
    ['driftfile "unterminated', /unterminated quoted string/],
    ['enable mode7', /mode 7 is never implemented/],
  ];
  for (const [text, re] of bad) {
    assert.throws(
      () => parseNtpConfText(text, 'a'),
      (e: Error) => re.test(e.message),
      text,
    );
  }
});

test('includefile is relative to the including file and depth-limited', () => {
  const files: Record<string, string> = {
    '/etc/ntp.conf': 'includefile ntp.d/extra.conf\n',
    '/etc/ntp.d/extra.conf': 'server 192.0.2.5\nincludefile /etc/loop.conf\n',
    '/etc/loop.conf': 'includefile /etc/loop.conf\n',
  };
  const readFile = (p: string) => {
    const t = files[p];
    if (t === undefined) throw new Error('ENOENT');
    return t;
  };
  assert.throws(
    () => parseNtpConfText(files['/etc/ntp.conf']!, '/etc/ntp.conf', { readFile }),
    /maximum includefile depth/,
  );
  files['/etc/ntp.d/extra.conf'] = 'server 192.0.2.5\n';
  const c = parseNtpConfText(files['/etc/ntp.conf']!, '/etc/ntp.conf', { readFile });
  assert.equal(c.sources[0]?.origin, '/etc/ntp.d/extra.conf:1');
});

test('-p output parses back to the same configuration', () => {
  const c = parseNtpConfText(FULL, 'ntp.conf');
  const again = parseNtpConfText(formatNtpConfig(c).replace(/^# warning.*$/gm, ''), 'printed');
  for (const k of [
    'sources',
    'restrict',
    'statistics',
    'filegen',
    'local',
    'makestep',
    'trustedkeys',
    'ratelimit',
  ] as const) {
    const strip = (v: unknown) => JSON.parse(JSON.stringify(v, (key, val) => (key === 'origin' ? undefined : val)));
    assert.deepEqual(strip(again[k]), strip(c[k]), k);
  }
});

test('dialect detection: file name, then the first distinctive directive', () => {
  assert.equal(detectConfigDialect('allow all', '/etc/ntp.conf'), 'ntp');
  assert.equal(detectConfigDialect('restrict default', '/etc/chrony.conf'), 'chrony');
  assert.equal(detectConfigDialect('server a\nrestrict default\nallow', 'x.conf'), 'ntp');
  assert.equal(detectConfigDialect('server a\nmakestep 1 3\ntos minsane 2', 'x.conf'), 'chrony');
  assert.equal(detectConfigDialect('server 127.127.28.0', 'x.conf'), 'ntp');
  assert.equal(detectConfigDialect('server a iburst', 'x.conf'), 'chrony');
});

test('trustedkey lists and ranges', () => {
  assert.deepEqual(parseKeyList(['7', '(1', '...', '3)', '(9...10)'], 'w'), [7, 1, 2, 3, 9, 10]);
  assert.throws(() => parseKeyList(['0'], 'w'), /w: invalid trustedkey '0'/);
});

test('converter output is accepted by the chrony.conf parser and keeps the access semantics', () => {
  const out = ntpConfToChrony(FULL, 'ntp.conf');
  const c = parseConfigText(out, 'converted');
  assert.deepEqual(
    c.sources.map((s) => s.host),
    ['192.0.2.1', '2001:db8::1', 'pool.example.org', '192.0.2.9'],
  );
  assert.equal(c.sources[0]!.options.offset, 0.001);
  assert.deepEqual(c.makestep, { threshold: 0.5, limit: -1 });
  assert.deepEqual(c.local && [c.local.stratum, c.local.orphan], [8, true]);
  assert.ok(
    c.access.some((r) => !r.allow && r.subnet === '10.0.0.0/8'),
    'ignore → deny',
  );
  assert.ok(
    c.access.some((r) => r.allow && r.subnet === '0.0.0.0/0'),
    'served default → allow',
  );
  assert.ok(c.ratelimit);
  assert.match(out, /^#keyfile \/etc\/ntp.keys$/m);
  assert.match(out, /# .*ntp\.conf:11: 'tos minclock 3' — no chrony equivalent/);
  // key/nts are kept for chronyd in converter mode (Rubidium refuses them when running).
  const keyed = ntpConfToChrony('server 192.0.2.1 key 5\nserver nts.example.com nts\nserver 127.127.28.0', 'k');
  assert.match(keyed, /^server 192\.0\.2\.1 key 5$/m);
  assert.match(keyed, /^server nts\.example\.com nts$/m);
  assert.match(keyed, /reference clock: write the chrony refclock line by hand/);
  assert.equal(parseNtpConf('', 'e').config.sources.length, 0);
});
