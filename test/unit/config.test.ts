import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ConfigError,
  DEFAULT_CONFIG_TEXT,
  DEFAULT_CMD_SOCKET,
  DEFAULT_SOURCE_OPTIONS,
  type Config,
  expandGlob,
  formatConfig,
  loadConfigFile,
  parseConfigText,
} from '../../src/config/chrony-conf.js';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'rb-conf-'));
}

function throwsAt(text: string, re: RegExp): void {
  assert.throws(
    () => parseConfigText(text, 'test.conf'),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
      assert.match(e.message, re);
      return true;
    },
  );
}

test('server and pool with every option', () => {
  const c = parseConfigText(
    `# comment
! another
; and another
% and another

SERVER ntp1.example.net minpoll 4 maxpoll 8 iburst burst prefer noselect trust require maxdelay 0.5 xleave port 1123 offline version 3 polltarget 12
server 192.0.2.1
pool pool.example.org iburst maxsources 6
pool pool2.example.org
`,
    'a.conf',
  );
  assert.equal(c.sources.length, 4);
  const [s0, s1, p0, p1] = c.sources;
  assert.deepEqual(s0, {
    type: 'server',
    host: 'ntp1.example.net',
    origin: 'a.conf:6',
    options: {
      ...DEFAULT_SOURCE_OPTIONS,
      minpoll: 4,
      maxpoll: 8,
      iburst: true,
      burst: true,
      prefer: true,
      noselect: true,
      trust: true,
      require: true,
      polltarget: 12,
      maxdelay: 0.5,
      xleave: true,
      port: 1123,
      offline: true,
      version: 3,
    },
  });
  assert.deepEqual(s1!.options, {
    ...DEFAULT_SOURCE_OPTIONS,
    minpoll: 6,
    maxpoll: 10,
    iburst: false,
    burst: false,
    prefer: false,
    noselect: false,
    trust: false,
    require: false,
    maxdelay: 3,
    polltarget: 16,
    xleave: false,
    port: 123,
    offline: false,
    version: null,
  });
  assert.equal(s1!.maxsources, undefined);
  assert.equal(p0!.type, 'pool');
  assert.equal(p0!.maxsources, 6);
  assert.equal(p0!.options.iburst, true);
  assert.equal(p1!.maxsources, 4);
  assert.deepEqual(c.warnings, []);
});

test('server option values are range-checked with file:line', () => {
  throwsAt('\nserver a minpoll 25', /^test\.conf:2: invalid minpoll '25' \(must be -7\.\.24\)$/);
  throwsAt('server a maxpoll -8', /^test\.conf:1: invalid maxpoll '-8'/);
});

test('more server option errors', () => {
  assert.doesNotThrow(() => parseConfigText('server a minpoll -7 maxpoll 24', 't'));
  throwsAt('server a version 5', /^test\.conf:1: invalid version '5' \(must be 1\.\.4\)$/);
  throwsAt('server a version 0', /test\.conf:1: invalid version '0'/);
  throwsAt('server a minpoll x', /test\.conf:1: invalid minpoll 'x' \(not an integer\)/);
  throwsAt('server a maxdelay abc', /test\.conf:1: invalid maxdelay 'abc'/);
  throwsAt('server a minpoll', /test\.conf:1: missing value for server option 'minpoll'/);
  throwsAt('server a bogus', /test\.conf:1: unknown server option 'bogus'/);
  throwsAt('server a maxsources 3', /test\.conf:1: option 'maxsources' is only valid for pool/);
  throwsAt('pool a maxsources 17', /test\.conf:1: invalid maxsources '17' \(must be 1\.\.16\)/);
  throwsAt('server a minpoll 10 maxpoll 6', /test\.conf:1: minpoll 10 is greater than maxpoll 6/);
  throwsAt('server', /test\.conf:1: missing hostname for server directive/);
  throwsAt('server a port 70000', /test\.conf:1: invalid port '70000'/);
});

test('harmless unimplemented server options are warnings, their values consumed; key/nts are errors', () => {
  const c = parseConfigText('server a presend 9 filter 3 iburst\n', 'w.conf');
  assert.equal(c.sources[0]!.options.iburst, true);
  assert.deepEqual(c.warnings, [
    "w.conf:1: server option 'presend' is not supported (ARP warm-up packets before long polls are not sent), ignored",
    "w.conf:1: server option 'filter' is not supported (the median filter is not implemented), ignored",
  ]);
  assert.equal(parseConfigText('server a key 5 iburst', 't').sources[0]!.options.key, 5); // symmetric-auth.test.ts
  assert.equal(parseConfigText('server a NTS', 't').sources[0]!.options.nts, true); // works now (config-nts.test.ts)
});

test('allow / deny / local / makestep / files / ports / log / minsources / maxdistance', () => {
  const c = parseConfigText(
    `allow
allow 192.168.1.0/24
deny all 192.168.1.7
allow all
deny 10
allow 2001:db8::/32
allow ntp.example.net
local stratum 8 orphan distance 0.5
makestep 1.0 3
driftfile /var/lib/rubidium/drift
pidfile /run/rubidiumd.pid
port 1123
bindaddress 127.0.0.1
bindaddress ::1
cmdport 0
bindcmdaddress 127.0.0.1
bindcmdaddress /run/rb/rb.sock
logdir /var/log/rubidium
log measurements statistics
log tracking
minsources 2
maxdistance 1.5
`,
    'b.conf',
  );
  assert.deepEqual(c.access, [
    { allow: true, all: false, subnet: '' },
    { allow: true, all: false, subnet: '192.168.1.0/24' },
    { allow: false, all: true, subnet: '192.168.1.7' },
    { allow: true, all: true, subnet: '' },
    { allow: false, all: false, subnet: '10' },
    { allow: true, all: false, subnet: '2001:db8::/32' },
    { allow: true, all: false, subnet: 'ntp.example.net' },
  ]);
  assert.deepEqual(c.local, { stratum: 8, orphan: true, distance: 0.5 });
  assert.deepEqual(c.makestep, { threshold: 1, limit: 3 });
  assert.equal(c.driftfile, '/var/lib/rubidium/drift');
  assert.equal(c.driftfileInterval, null);
  assert.equal(c.pidfile, '/run/rubidiumd.pid');
  assert.equal(c.port, 1123);
  assert.deepEqual(c.bindaddress, ['127.0.0.1', '::1']);
  assert.equal(c.cmdport, 0);
  assert.deepEqual(c.bindcmdaddress, ['127.0.0.1']);
  assert.equal(c.cmdSocket, '/run/rb/rb.sock');
  assert.equal(c.logdir, '/var/log/rubidium');
  assert.deepEqual(c.log, ['measurements', 'statistics', 'tracking']);
  assert.equal(c.minsources, 2);
  assert.equal(c.maxdistance, 1.5);
  assert.deepEqual(c.warnings, []);

  const d = parseConfigText('local\nbindcmdaddress /\ndriftfile /x interval 3600\n', 'c.conf');
  assert.deepEqual(d.local, { stratum: 10, orphan: false, distance: 1 });
  assert.equal(d.cmdSocket, null);
  assert.equal(d.driftfileInterval, 3600);
  const e = parseConfigText('', 'e.conf');
  assert.equal(e.cmdSocket, DEFAULT_CMD_SOCKET);
  assert.equal(e.port, 123);
  assert.equal(e.cmdport, 323);
  assert.equal(e.local, null);
});

test('bad values of the other directives: error with file:line', () => {
  throwsAt('\n\nlocal stratum 16', /^test\.conf:3: invalid local stratum '16' \(must be 1\.\.15\)$/);
  throwsAt('local stratum 0', /test\.conf:1: invalid local stratum '0'/);
  throwsAt('local foo', /test\.conf:1: unknown local option 'foo'/);
  throwsAt('makestep 1', /test\.conf:1: missing arguments for makestep directive/);
  throwsAt('makestep 1 2 3', /test\.conf:1: too many arguments for makestep directive/);
  throwsAt('makestep x 3', /test\.conf:1: invalid makestep threshold 'x'/);
  throwsAt('makestep 1 1.5', /test\.conf:1: invalid makestep limit '1.5'/);
  throwsAt('port 65536', /test\.conf:1: invalid port '65536' \(must be 0\.\.65535\)/);
  throwsAt('cmdport -1', /test\.conf:1: invalid cmdport '-1'/);
  throwsAt('bindaddress 300.1.1.1', /test\.conf:1: invalid bindaddress '300\.1\.1\.1' \(not an IP address\)/);
  throwsAt('bindcmdaddress localhost', /test\.conf:1: invalid bindcmdaddress 'localhost'/);
  throwsAt('allow 192.168.1.0/33', /test\.conf:1: invalid subnet '192\.168\.1\.0\/33' in allow directive/);
  throwsAt('deny 1.2.3.4 5.6.7.8', /test\.conf:1: too many arguments for deny directive/);
  throwsAt('log foo', /test\.conf:1: invalid log parameter 'foo'/);
  throwsAt('log', /test\.conf:1: missing arguments for log directive/);
  throwsAt('minsources 0', /test\.conf:1: invalid minsources '0'/);
  throwsAt('maxdistance -1', /test\.conf:1: invalid maxdistance '-1'/);
  throwsAt('pidfile', /test\.conf:1: missing arguments for pidfile directive/);
});

test('unknown directive is an error; unimplemented chrony directives are errors or warnings by their status', () => {
  throwsAt('server a\nfrobnicate 3', /^test\.conf:2: unknown directive 'frobnicate'$/);
  throwsAt('constructor', /^test\.conf:1: unknown directive 'constructor'$/);
  throwsAt(
    'REFCLOCK PHC /dev/ptp0',
    /^test\.conf:1: directive 'refclock' is not supported yet \(planned: reference clocks/,
  );
  throwsAt('peer 192.0.2.9', /^test\.conf:1: directive 'peer' is not supported: symmetric \(peer\) mode/);
  const c = parseConfigText('dumpdir /var/lib/chrony\nlinux_hz 100\nntsdumpdir /var/lib/chrony\n', 'u.conf');
  assert.deepEqual(c.warnings, [
    "u.conf:1: directive 'dumpdir' is not supported (measurement history is not saved across restarts; sources start afresh), ignored",
  ]);
  assert.equal(c.nts.ntsdumpdir, '/var/lib/chrony'); // NTS directives work (config-nts.test.ts)
  assert.equal(c.sources.length, 0);
});

test('include with a glob, confdir precedence, sourcedir', () => {
  const dir = tmpdir();
  try {
    fs.mkdirSync(path.join(dir, 'inc'));
    fs.writeFileSync(path.join(dir, 'inc', 'b.conf'), 'server b.example\n');
    fs.writeFileSync(path.join(dir, 'inc', 'a.conf'), 'server a.example\n');
    fs.writeFileSync(path.join(dir, 'inc', 'c.txt'), 'server c.example\n');
    fs.mkdirSync(path.join(dir, 'd1'));
    fs.mkdirSync(path.join(dir, 'd2'));
    fs.writeFileSync(path.join(dir, 'd1', '20-x.conf'), 'port 1000\n');
    fs.writeFileSync(path.join(dir, 'd2', '20-x.conf'), 'port 2000\n'); // shadowed by d1's
    fs.writeFileSync(path.join(dir, 'd2', '10-y.conf'), 'cmdport 3000\nport 1500\n');
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'src', 'one.sources'), '# sources\nserver s1.example iburst\npool p.example\n');
    fs.writeFileSync(path.join(dir, 'src', 'ignored.conf'), 'bogus\n');
    const main = path.join(dir, 'main.conf');
    fs.writeFileSync(
      main,
      `include ${dir}/inc/*.conf\nconfdir ${dir}/d1 ${dir}/d2 ${dir}/missing\nsourcedir ${dir}/src\ninclude ${dir}/nomatch/*.conf\n`,
    );
    const c = loadConfigFile(main);
    assert.deepEqual(
      c.sources.map((s) => s.host),
      ['a.example', 'b.example', 's1.example', 'p.example'],
    );
    assert.equal(c.sources[0]!.origin, `${dir}/inc/a.conf:1`);
    assert.equal(c.sources[2]!.origin, `${dir}/src/one.sources:2`);
    // 10-y (d2) then 20-x from d1 (first directory wins): port ends at 1000.
    assert.equal(c.cmdport, 3000);
    assert.equal(c.port, 1000);
    assert.deepEqual(c.sourcedirs, [`${dir}/src`]);

    // Errors inside included files carry that file's name and line.
    fs.writeFileSync(path.join(dir, 'inc', 'z.conf'), '\nserver x minpoll 99\n');
    assert.throws(() => loadConfigFile(main), new RegExp(`^ConfigError: ${dir}/inc/z\\.conf:2: invalid minpoll '99'`));
    fs.unlinkSync(path.join(dir, 'inc', 'z.conf'));
    // A sources file may only contain sources.
    fs.writeFileSync(path.join(dir, 'src', 'two.sources'), 'port 5\n');
    assert.throws(() => loadConfigFile(main), /two\.sources:1: only server, pool and peer directives are allowed/);
    fs.unlinkSync(path.join(dir, 'src', 'two.sources'));
    // Recursive include is stopped.
    fs.writeFileSync(path.join(dir, 'loop.conf'), `include ${dir}/loop.conf\n`);
    assert.throws(() => loadConfigFile(path.join(dir, 'loop.conf')), /maximum include level/);
    assert.throws(
      () => loadConfigFile(path.join(dir, 'nonexistent.conf')),
      /nonexistent\.conf: cannot read configuration/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('include/confdir use the injected file system', () => {
  const files: Record<string, string> = {
    '/etc/x/1.conf': 'server one',
    '/etc/x/2.conf': 'server two',
    '/etc/x/.h.conf': 'bogus',
  };
  const fsx = {
    readFile: (p: string): string => {
      if (!(p in files)) throw new Error('ENOENT');
      return files[p]!;
    },
    readdir: (d: string): string[] => {
      // Direct children (files and directories) of d.
      const prefix = d.endsWith('/') ? d : d + '/';
      const names = new Set(
        Object.keys(files)
          .filter((f) => f.startsWith(prefix))
          .map((f) => f.slice(prefix.length).split('/')[0]!),
      );
      if (names.size === 0) throw new Error('ENOENT');
      return [...names];
    },
  };
  assert.deepEqual(expandGlob('/etc/x/?.conf', fsx), ['/etc/x/1.conf', '/etc/x/2.conf']);
  assert.deepEqual(expandGlob('/etc/[x]/2.*', fsx), ['/etc/x/2.conf']);
  const c = parseConfigText('include /etc/x/*.conf\n', '/etc/main.conf', { fs: fsx });
  assert.deepEqual(
    c.sources.map((s) => s.host),
    ['one', 'two'],
  );
  const d = parseConfigText('confdir /etc/x\n', '/etc/main.conf', { fs: fsx });
  assert.deepEqual(
    d.sources.map((s) => s.host),
    ['one', 'two'],
  );
});

test('DEFAULT_CONFIG_TEXT parses into the localhost test server', () => {
  const c = parseConfigText(DEFAULT_CONFIG_TEXT, '(built-in)');
  assert.equal(c.port, 11123);
  assert.deepEqual(c.bindaddress, ['127.0.0.1']);
  assert.deepEqual(c.access, [{ allow: true, all: false, subnet: '127.0.0.1' }]);
  assert.deepEqual(c.local, { stratum: 10, orphan: false, distance: 1 });
  assert.equal(c.cmdport, 11323);
  assert.deepEqual(c.bindcmdaddress, ['127.0.0.1']);
  assert.deepEqual(c.sources, []);
  assert.deepEqual(c.warnings, []);
});

function strip(c: Config): unknown {
  return { ...c, sources: c.sources.map((s) => ({ ...s, origin: '' })), warnings: [], sourcedirs: [] };
}

test('formatConfig round-trips', () => {
  const texts = [
    DEFAULT_CONFIG_TEXT,
    `server ntp1.example.net minpoll 4 maxpoll 8 iburst burst prefer noselect trust require maxdelay 0.5 xleave port 1123 offline version 3
pool pool.example.org iburst maxsources 6
pool p2.example.org
server 192.0.2.1
allow
allow 192.168.0.0/16
deny all 192.168.1.7
local stratum 3 orphan distance 0.25
makestep 0.1 -1
driftfile /var/lib/d interval 600
pidfile /run/p
port 0
bindaddress ::1
cmdport 0
bindcmdaddress /
bindcmdaddress ::1
logdir /tmp/l
log tracking measurements
minsources 3
maxdistance 16
dumpdir /var/lib/chrony
`,
  ];
  for (const t of texts) {
    const c = parseConfigText(t, 'x.conf');
    const printed = formatConfig(c);
    const again = parseConfigText(printed, 'y.conf');
    assert.deepEqual(strip(again), strip(c), printed);
    assert.equal(formatConfig(again).replace(/^# warning.*\n/gm, ''), printed.replace(/^# warning.*\n/gm, ''));
  }
  const c = parseConfigText(texts[1]!, 'x.conf');
  const printed = formatConfig(c);
  assert.match(
    printed,
    /^server ntp1\.example\.net minpoll 4 maxpoll 8 maxdelay 0\.5 port 1123 version 3 iburst burst prefer noselect trust require xleave offline$/m,
  );
  assert.match(printed, /^# warning: x\.conf:21: directive 'dumpdir' is not supported \(.*\), ignored$/m);
  assert.match(printed, /^bindcmdaddress \/$/m);
});
