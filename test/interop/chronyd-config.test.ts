/**
 * `rubidiumd -p` output against the real chronyd 4.3 parser (`chronyd -p -f FILE` parses, prints
 * and exits before touching the clock, the pidfile or privileges; main.c), and real-world
 * chrony.conf lines through both parsers: chronyd never accepts less than it should from us, and
 * every line we refuse that chronyd accepts is a directive our status table refuses with an error.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, parseConfigText } from '../../src/config/chrony-conf.js';
import { DIRECTIVE_STATUS, SOURCE_OPTION_STATUS, type DirectiveStatus } from '../../src/config/directive-status.js';
import { PEER_BINARIES, requirePeers } from '../support/peers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CHRONY_MIRROR = '/work/.mirror/mlichvar+chrony/repo';

function chronydAccepts(file: string): { ok: boolean; out: string } {
  const r = spawnSync(PEER_BINARIES.chronyd, ['-p', '-f', file], { encoding: 'utf8', timeout: 10000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function rubidiumdPrint(file: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [path.join(ROOT, 'bin', 'rubidiumd'), '-f', file, '-p'], {
    encoding: 'utf8',
    timeout: 20000,
  });
}

/** Configurations using every directive and option rubidiumd prints that chrony 4.3 knows. */
const CONFIGS = [
  `server ntp1.example.net iburst minpoll 4 maxpoll 8 maxdelay 0.5 maxdelayratio 3 maxdelaydevratio 5 offset -0.00005 minstratum 3 minsamples 8 maxsamples 32 polltarget 12 xleave prefer trust require port 1123 version 3
server 192.0.2.1 noselect offline burst
pool pool.example.net iburst maxsources 6
initstepslew 30 ntp2.example.net
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
ratelimit interval 1 burst 16 leak 3
acquisitionport 1123
bindacqaddress 192.0.2.5
minsources 2
maxdistance 1.5
makestep 0.1 3
driftfile /var/lib/rubidium/drift
pidfile /run/rubidium-test.pid
port 11123
bindaddress 127.0.0.1
allow 192.168.0.0/16
deny all 192.168.1.7
local stratum 8 orphan distance 0.5
cmdport 0
bindcmdaddress /run/rubidium-test.sock
logdir /var/log/rubidium
log measurements statistics tracking
`,
  'port 11123\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 10\ncmdport 11323\nbindcmdaddress 127.0.0.1\n',
];

/** Real-world chrony.conf text: this machine's, and chrony 4.3's examples with their sample lines uncommented. */
function realWorldFiles(): Array<{ name: string; text: string }> {
  // Lines seen in distribution and site configurations that Rubidium refuses on purpose.
  const out: Array<{ name: string; text: string }> = [
    {
      name: 'site snippets',
      text: [
        'peer 192.0.2.9 key 1',
        'refclock PPS /dev/pps0 lock NMEA refid GPS',
        'refclock SHM 0 offset 0.5 delay 0.2 refid NMEA noselect',
        'server time.cloudflare.com iburst nts',
        'server 192.0.2.1 iburst key 10',
        'binddevice eth0',
        'broadcast 30 192.168.1.255',
        'server 192.0.2.2 iburst copy',
        'pool 2.pool.ntp.org iburst maxsources 4 xleave',
        'hwtimestamp eth0',
        'dumpdir /var/lib/chrony',
        'rtconutc',
        'lock_all',
        'manual',
        'server ntp.example.net bogusoption',
        'frobnicate 1',
      ].join('\n'),
    },
  ];
  if (fs.existsSync('/etc/chrony/chrony.conf')) {
    out.push({ name: '/etc/chrony/chrony.conf', text: fs.readFileSync('/etc/chrony/chrony.conf', 'utf8') });
  }
  for (const ex of ['chrony.conf.example1', 'chrony.conf.example2', 'chrony.conf.example3']) {
    const r = spawnSync('git', ['-C', CHRONY_MIRROR, 'show', `4.3:examples/${ex}`], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    const text = r.stdout
      .split('\n')
      .map((l) => {
        const m = /^[!#]\s?([a-z_]+)(\s|$)/.exec(l);
        return m && m[1]! in DIRECTIVE_STATUS ? l.replace(/^[!#]\s?/, '') : l;
      })
      .join('\n');
    out.push({ name: ex, text });
  }
  return out;
}

describe('rubidiumd -p and chronyd 4.3 agree on chrony.conf', () => {
  let dir = '';
  before(() => {
    requirePeers(['chronyd']);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `rb-chronyconf-${process.pid}-`));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('chronyd -p accepts what rubidiumd -p prints, line for line', () => {
    CONFIGS.forEach((text, i) => {
      const src = path.join(dir, `in${i}.conf`);
      fs.writeFileSync(src, text);
      const r = rubidiumdPrint(src);
      assert.equal(r.status, 0, r.stderr);
      const printed = path.join(dir, `printed${i}.conf`);
      fs.writeFileSync(printed, r.stdout);
      const c = chronydAccepts(printed);
      assert.ok(c.ok, `chronyd -p rejected rubidiumd -p output:\n${c.out}\n--- output was:\n${r.stdout}`);
      // chronyd -p echoes every directive it parsed: the same lines as ours (comments aside).
      const ours = r.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
      const theirs = c.out.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
      assert.deepEqual(theirs.sort(), ours.sort());
      // And ours parses back to the same configuration.
      const again = parseConfigText(r.stdout, printed);
      const strip = (x: ReturnType<typeof parseConfigText>) => ({
        ...x,
        sources: x.sources.map((s) => ({ ...s, origin: '' })),
        warnings: [],
      });
      assert.deepEqual(strip(again), strip(parseConfigText(text, src)));
    });
  });

  it('real-world configuration lines: same verdict, or a documented refusal', () => {
    const files = realWorldFiles();
    assert.ok(files.length > 0, 'no real-world chrony.conf available');
    let lines = 0;
    let bothAccept = 0;
    let bothReject = 0;
    const weRefuse: string[] = [];
    const problems: string[] = [];
    for (const f of files) {
      for (const [n, line] of f.text.split('\n').entries()) {
        if (!line.trim() || '#!;%'.includes(line.trim()[0]!)) continue;
        lines++;
        const one = path.join(dir, 'line.conf');
        fs.writeFileSync(one, `${line}\n`);
        const theirs = chronydAccepts(one).ok;
        let ours = true;
        let why = '';
        try {
          parseConfigText(line, `${f.name}:${n + 1}`, { fs: { readFile: () => '', readdir: () => [] } });
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          ours = false;
          why = e.message;
        }
        if (ours && theirs) bothAccept++;
        else if (!ours && !theirs) bothReject++;
        else if (ours && !theirs) problems.push(`${f.name}:${n + 1}: chronyd rejects, we accept: ${line}`);
        else {
          const name = line.trim().split(/\s+/)[0]!.toLowerCase();
          const st = DIRECTIVE_STATUS[name];
          const opt = /option '([a-z_0-9]+)' is not supported/.exec(why)?.[1];
          const ost = opt !== undefined ? SOURCE_OPTION_STATUS[opt]?.status : undefined;
          const fatal = (s?: DirectiveStatus): boolean =>
            s !== undefined && (s.kind === 'planned' || s.kind === 'refused') && s.fatal;
          const documented = opt !== undefined ? fatal(ost) : fatal(st);
          if (documented) weRefuse.push(`${name}: ${why}`);
          else problems.push(`${f.name}:${n + 1}: we reject, chronyd accepts: ${line} (${why})`);
        }
      }
    }
    console.log(
      `# ${lines} real-world lines: ${bothAccept} accepted by both, ${bothReject} rejected by both, ` +
        `${weRefuse.length} refused only by rubidiumd (documented)`,
    );
    for (const w of weRefuse) console.log(`#   ${w}`);
    assert.deepEqual(problems, []);
    assert.ok(bothAccept > 10, `only ${bothAccept} lines accepted by both`);
  });
});
