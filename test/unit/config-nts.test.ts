import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatConfig, parseConfigText } from '../../src/config/chrony-conf.js';
import { checkNtsConfig, defaultNtsConfig } from '../../src/config/nts-config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function throwsAt(text: string, re: RegExp): void {
  assert.throws(
    () => parseConfigText(text, 't.conf'),
    (e: unknown) => e instanceof ConfigError && re.test(e.message),
    text,
  );
}

const FULL = `server nts.example.net iburst nts ntsport 4461 certset 2
pool pool.example.net nts
ntsport 14460
ntsservercert /etc/nts/a.crt
ntsserverkey /etc/nts/a.key
ntsservercert /etc/nts/b.crt
ntsserverkey /etc/nts/b.key
ntstrustedcerts /etc/nts/ca0.crt
ntstrustedcerts 2 /etc/nts/ca-dir
nosystemcert
nocerttimecheck 1
maxntsconnections 20
ntsrefresh 3600
ntsaeads 15
ntsntpserver ntp.example.net
ntsrotate 0
ntsdumpdir /var/lib/rubidium
ntsprocesses 4
ntsratelimit interval 3 burst 1
`;

test('NTS directives and source options parse into Config', () => {
  const c = parseConfigText(FULL, 'nts.conf');
  assert.deepEqual(c.warnings, []);
  const s = c.sources[0]!.options;
  assert.equal(s.nts, true);
  assert.equal(s.ntsport, 4461);
  assert.equal(s.certset, 2);
  assert.equal(s.iburst, true);
  assert.equal(c.sources[1]!.options.nts, true);
  assert.equal(c.sources[1]!.options.ntsport, 4460);
  assert.deepEqual(c.nts, {
    ntsport: 14460,
    ntsservercert: ['/etc/nts/a.crt', '/etc/nts/b.crt'],
    ntsserverkey: ['/etc/nts/a.key', '/etc/nts/b.key'],
    ntstrustedcerts: [
      { set: 0, path: '/etc/nts/ca0.crt' },
      { set: 2, path: '/etc/nts/ca-dir' },
    ],
    nosystemcert: true,
    nocerttimecheck: 1,
    maxntsconnections: 20,
    ntsrefresh: 3600,
    ntsaeads: [15],
    ntsntpserver: 'ntp.example.net',
    ntsrotate: 0,
    ntsdumpdir: '/var/lib/rubidium',
    ntsratelimit: { interval: 3, burst: 1, leak: 2, kod: 0 },
  });
  assert.equal(checkNtsConfig(c.nts), null);
});

test("NTS defaults are chrony's", () => {
  const c = parseConfigText('server a nts\n', 'd.conf');
  assert.equal(c.sources[0]!.options.ntsport, 4460);
  assert.equal(c.sources[0]!.options.certset, 0);
  assert.equal(c.nts.ntsport, 4460);
  assert.equal(c.nts.maxntsconnections, 100);
  assert.equal(c.nts.ntsrefresh, 2419200);
  assert.equal(c.nts.ntsrotate, 604800);
  assert.deepEqual(c.nts.ntsaeads, [30, 15]);
  assert.equal(c.nts.ntsdumpdir, null);
  // ntscachedir is chrony's old name of ntsdumpdir.
  assert.equal(parseConfigText('ntscachedir /x\n', 'd.conf').nts.ntsdumpdir, '/x');
  // a source without nts stays unauthenticated (the option is off by default)
  assert.equal(parseConfigText('server a\n', 'd.conf').sources[0]!.options.nts, false);
});

test('bad NTS values are errors naming file:line', () => {
  throwsAt('server a nts ntsport', /^t\.conf:1: missing value for server option 'ntsport'/);
  throwsAt('server a ntsport 0', /^t\.conf:1: invalid ntsport '0' \(must be 1\.\.65535\)/);
  throwsAt('server a certset -1', /^t\.conf:1: invalid certset '-1'/);
  throwsAt('\nntsport 70000', /^t\.conf:2: invalid ntsport '70000'/);
  throwsAt('ntsport', /^t\.conf:1: missing arguments for ntsport directive/);
  throwsAt('ntsservercert a b', /^t\.conf:1: too many arguments for ntsservercert directive/);
  throwsAt('ntstrustedcerts x /a', /^t\.conf:1: invalid ntstrustedcerts set 'x' \(not an integer\)/);
  throwsAt('ntstrustedcerts 4294967296 /a', /^t\.conf:1: invalid ntstrustedcerts set/);
  throwsAt('nosystemcert yes', /^t\.conf:1: too many arguments for nosystemcert directive/);
  throwsAt('nocerttimecheck -1', /^t\.conf:1: invalid nocerttimecheck '-1'/);
  throwsAt('maxntsconnections 0', /^t\.conf:1: invalid maxntsconnections '0'/);
  throwsAt('ntsrefresh 0', /^t\.conf:1: invalid ntsrefresh '0'/);
  throwsAt('ntsrotate 1w', /^t\.conf:1: invalid ntsrotate '1w' \(not an integer\)/);
  throwsAt('ntsaeads', /^t\.conf:1: missing arguments for ntsaeads directive/);
  throwsAt('ntsaeads 16 17', /^t\.conf:1: ntsaeads lists no supported AEAD/);
  throwsAt('ntsaeads AES', /^t\.conf:1: invalid ntsaeads id 'AES'/);
  throwsAt('ntsntpserver bad/name', /^t\.conf:1: invalid ntsntpserver 'bad\/name'/);
});

test('ntsaeads keeps supported ids in order and warns about the others', () => {
  const c = parseConfigText('ntsaeads 16 15 30 15\n', 'a.conf');
  assert.deepEqual(c.nts.ntsaeads, [15, 30]);
  assert.equal(c.warnings.length, 1);
  assert.match(c.warnings[0]!, /^a\.conf:1: ntsaeads: unsupported AEAD id\(s\) 16 ignored$/);
});

test('unpaired ntsservercert/ntsserverkey is reported', () => {
  const c = defaultNtsConfig();
  c.ntsservercert.push('/a.crt');
  assert.match(checkNtsConfig(c) ?? '', /ntsservercert given 1 time\(s\) but ntsserverkey 0/);
});

test('formatConfig prints the NTS configuration, which parses back to the same', () => {
  const c = parseConfigText(FULL, 'nts.conf');
  const text = formatConfig(c);
  assert.match(text, /^server nts\.example\.net iburst nts ntsport 4461 certset 2$/m);
  assert.match(text, /^pool pool\.example\.net nts$/m);
  assert.match(text, /^ntstrustedcerts 2 \/etc\/nts\/ca-dir$/m);
  assert.doesNotMatch(text, /ntsprocesses/); // no effect: not printed
  const back = parseConfigText(text, 'p.conf');
  assert.deepEqual(back.nts, c.nts);
  assert.deepEqual(
    back.sources.map((s) => s.options),
    c.sources.map((s) => s.options),
  );
  // Defaults print nothing.
  assert.doesNotMatch(formatConfig(parseConfigText('ntsport 4460\nntsaeads 30 15\n', 'x')), /nts/);
});

test('rubidiumd -p prints the NTS directives', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rb-config-nts-${process.pid}-`));
  try {
    const file = path.join(dir, 'chrony.conf');
    fs.writeFileSync(file, FULL);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'rubidiumd'), '-f', file, '-p'], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ntsservercert \/etc\/nts\/b\.crt$/m);
    assert.match(r.stdout, /^ntsdumpdir \/var\/lib\/rubidium$/m);
    assert.match(r.stdout, /^server nts\.example\.net iburst nts ntsport 4461 certset 2$/m);
    fs.writeFileSync(file, 'server a.example\nntsrotate never\n');
    const bad = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'rubidiumd'), '-f', file, '-p'], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:2: invalid ntsrotate 'never'`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ntsratelimit: chrony defaults (interval 6), options, errors, -p round trip', () => {
  assert.equal(parseConfigText('', 'x').nts.ntsratelimit, null);
  assert.deepEqual(parseConfigText('ntsratelimit\n', 'x').nts.ntsratelimit, {
    interval: 6,
    burst: 8,
    leak: 2,
    kod: 0,
  });
  const c = parseConfigText('ntsratelimit interval 3 burst 1\n', 'x');
  assert.deepEqual(c.nts.ntsratelimit, { interval: 3, burst: 1, leak: 2, kod: 0 });
  assert.deepEqual(parseConfigText(formatConfig(c), 'p').nts.ntsratelimit, c.nts.ntsratelimit);
  throwsAt('ntsratelimit burst 0\n', /:1: invalid ratelimit burst '0'/);
  throwsAt('ntsratelimit interval\n', /:1: missing value/);
  throwsAt('ntsratelimit speed 3\n', /:1: unknown ratelimit option/);
});
