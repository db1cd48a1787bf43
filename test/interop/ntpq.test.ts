/**
 * NTPsec's real ntpq against rubidiumd (NTP mode 6, RFC 9327), in network namespaces:
 *  - rubidiumd -x (ntp.conf) syncs to a rubidiumd `local stratum 1` server over veth and also has
 *    130 silent sources on loopback addresses, so the association list needs two fragments;
 *  - ntpq -pn / -p / -c rv / -c as / -c "rv 0 offset,stratum" / -c opeers from loopback: parsed
 *    values (remote, refid, st, reach, offset, rv's stratum/refid/leap/peer);
 *  - restrict noquery: no answer at all (raw request from the noquery address);
 *  - anti-amplification from a non-loopback address: every answer, byte for byte, no larger
 *    than its request; ntpq from there reports RESTRICT;
 *  - mode 7 (ntpdc, monlist) never answered;
 *  - chrony.conf (no restrict): loopback only.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNothingLeft,
  cleanupLeftovers,
  createNetnsPair,
  isRoot,
  run,
  runInNs,
  unwind,
  waitFor,
} from '../support/netns.js';
import { READY_SERVING, startRubidiumd } from '../support/rubidiumd.js';
import { PEER_BINARIES, ntpsecEnv, parseNtpqPeers, requirePeers } from '../support/peers.js';
import { ntpqRequest } from '../support/mode6.js';
import { CERR, OP, decodeControlHeader } from '../../src/ntp/mode6.js';

const PYTHON = '/usr/bin/python3';
const skip = isRoot() ? false : 'interop tests need root (network namespaces, veth)';

const SUBNET = 46;
const SERVER = `10.77.${SUBNET}.1`;
const CLIENT = `10.77.${SUBNET}.2`;
/** A second address in the server namespace that the client's ntp.conf marks noquery. */
const NOQUERY = `10.77.${SUBNET}.3`;
const SILENT = 130;

async function ntpq(ns: string, args: string[], host = '127.0.0.1'): Promise<{ stdout: string; stderr: string }> {
  const r = await runInNs(ns, PYTHON, [PEER_BINARIES.ntpq, ...args, host], {
    env: ntpsecEnv(),
    timeoutMs: 30_000,
    check: false,
  });
  return { stdout: r.stdout, stderr: r.stderr };
}

/** `name=value` pairs of ntpq's cooked rv output (values as printed). */
function rvVars(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const body = text.replace(/^associd=\d+ status=[0-9a-f]{4} [^\n]*\n/, '');
  for (const m of body.matchAll(/([a-z_]+)=("[^"]*"|[^,\n]*)/g)) out.set(m[1]!, m[2]!.replace(/^"|"$/g, ''));
  return out;
}

/**
 * Sends raw mode 6/7 datagrams from `bind` (inside `ns`) to `to`:123, one at a time, and collects
 * every datagram that comes back within `waitMs` of each. Returns hex strings per request.
 */
async function rawExchange(
  ns: string,
  bind: string,
  to: string,
  requests: Uint8Array[],
  waitMs = 700,
): Promise<Array<{ request: number; responses: Buffer[] }>> {
  const script = `
const dgram = require('node:dgram');
const reqs = ${JSON.stringify(requests.map((r) => Buffer.from(r).toString('hex')))};
const s = dgram.createSocket('udp4');
const out = [];
let cur = null;
s.on('message', (m) => { if (cur) cur.push(m.toString('hex')); });
s.bind({ address: ${JSON.stringify(bind)}, port: 0 }, async () => {
  for (const h of reqs) {
    cur = [];
    s.send(Buffer.from(h, 'hex'), 123, ${JSON.stringify(to)});
    await new Promise((r) => setTimeout(r, ${waitMs}));
    out.push({ request: h.length / 2, responses: cur });
  }
  s.close();
  process.stdout.write(JSON.stringify(out));
});`;
  const r = await runInNs(ns, process.execPath, ['-e', script], { timeoutMs: 10_000 + requests.length * waitMs });
  const parsed = JSON.parse(r.stdout) as Array<{ request: number; responses: string[] }>;
  return parsed.map((x) => ({ request: x.request, responses: x.responses.map((h) => Buffer.from(h, 'hex')) }));
}

/** An ntpdc-style mode 7 request: MON_GETLIST_1 (the monlist amplification of CVE-2013-5211). */
function mode7Monlist(): Uint8Array {
  const b = new Uint8Array(48);
  b[0] = (2 << 3) | 7;
  b[2] = 3; // implementation XNTPD
  b[3] = 42; // REQ_MON_GETLIST_1
  return b;
}

describe('NTPsec ntpq against rubidiumd (mode 6)', { skip }, () => {
  before(async () => {
    requirePeers(['ntpq']);
    await cleanupLeftovers();
  });

  after(() => {
    assertNothingLeft();
  });

  it('ntpq -p/-pn/rv/as/opeers, fragments, noquery, amplification, mode 7', { timeout: 240_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair = await createNetnsPair({ tag: 'q6', subnet: SUBNET });
      cleanups.push(() => pair.destroy());
      await run('ip', ['-n', pair.server, 'addr', 'add', `${NOQUERY}/24`, 'dev', pair.serverIf]);
      const server = await startRubidiumd({
        ns: pair.server,
        tag: 'ntpq-srv',
        confName: 'server.conf',
        lines: ['local stratum 1', 'allow all', 'cmdport 0', 'bindcmdaddress $DIR/cmd.sock'],
        ready: READY_SERVING,
      });
      cleanups.push(() => server.stop());

      const silent = Array.from(
        { length: SILENT },
        (_, i) => `server 127.1.${i >> 8}.${(i & 0xff) + 1} minpoll 10 maxpoll 10 noselect`,
      );
      const client = await startRubidiumd({
        ns: pair.client,
        tag: 'ntpq-cli',
        confName: 'ntp.conf',
        lines: [
          `server ${SERVER} iburst minpoll 0 maxpoll 0`,
          ...silent,
          // NTPsec's built-in default is noquery; open ntpq to loopback and the server's address.
          'restrict 127.0.0.1',
          `restrict ${SERVER}`,
          `restrict ${NOQUERY} noquery`,
        ],
        ready: READY_SERVING,
      });
      cleanups.push(() => client.stop());

      // ntpq -pn from loopback: wait until rubidiumd has selected the server ('*').
      const peers = await waitFor(
        async () => {
          const list = parseNtpqPeers((await ntpq(pair.client, ['-pn'])).stdout);
          const sel = list.find((p) => p.remote === SERVER && p.tally === '*');
          return sel && sel.reach >= 0o17 ? list : null;
        },
        { timeoutMs: 60_000, intervalMs: 1000, what: 'ntpq -pn to show the server as system peer' },
      ).catch(async (e: Error) => {
        throw new Error(
          `${e.message}\n${(await ntpq(pair.client, ['-pn'])).stdout.slice(0, 2000)}\n${client.proc.tail()}`,
        );
      });
      // All 131 associations listed: the READSTAT answer (524 bytes) was reassembled from 2 fragments.
      assert.equal(peers.length, SILENT + 1);
      const sel = peers.find((p) => p.remote === SERVER)!;
      console.log(`# ntpq -pn: ${JSON.stringify(sel)}`);
      assert.equal(sel.refid, '.LOCL.');
      assert.equal(sel.stratum, 1);
      assert.equal(sel.type, 'u');
      assert.equal(sel.poll, 1);
      assert.ok(sel.reach >= 0o17, `reach ${sel.reach.toString(8)}`);
      // Both daemons read the host clock (-x): the measured offset is tiny.
      assert.ok(Math.abs(sel.offsetMs) < 1, `offset ${sel.offsetMs} ms`);
      // The server's T3 carries its learnt send latency (src/ntp/tx-latency.ts): over veth the
      // round trip left is a few µs, which ntpq may print as 0.000 ms.
      assert.ok(sel.delayMs >= 0 && sel.delayMs < 5, `delay ${sel.delayMs} ms`);
      const quiet = peers.filter((p) => p.remote.startsWith('127.1.'));
      assert.equal(quiet.length, SILENT);
      for (const q of quiet) {
        assert.equal(q.tally, ' ');
        assert.equal(q.refid, '.INIT.');
        assert.equal(q.stratum, 16);
        assert.equal(q.reach, 0);
      }
      const dbg = await ntpq(pair.client, ['-d', '-c', 'as']);
      const frag = /Fragment collection ends\. (\d+) bytes\s+in (\d+) fragments/.exec(dbg.stdout + dbg.stderr);
      assert.ok(frag, 'ntpq -d reports the fragment collection');
      assert.equal(Number(frag[1]), (SILENT + 1) * 4);
      assert.equal(Number(frag[2]), 2);

      // ntpq -p (names): same row for the server (no DNS in the namespace: the address stays).
      const named = parseNtpqPeers((await ntpq(pair.client, ['-p'])).stdout).find((p) => p.tally === '*');
      assert.ok(named, 'ntpq -p shows a system peer');
      assert.equal(named.refid, '.LOCL.');
      assert.equal(named.stratum, 1);

      // ntpq -c rv: system variables.
      const rvOut = (await ntpq(pair.client, ['-c', 'rv'])).stdout;
      console.log(`# ntpq -c rv:\n${rvOut.replace(/^/gm, '#   ')}`);
      assert.match(rvOut, /^associd=0 status=06[0-9a-f]{2} leap_none, sync_ntp,/);
      const rv = rvVars(rvOut);
      assert.match(rv.get('version')!, /^rubidiumd \d+\.\d+\.\d+/);
      assert.equal(rv.get('stratum'), '2');
      assert.equal(rv.get('refid'), SERVER);
      assert.equal(rv.get('leap'), '00');
      assert.ok(Math.abs(Number(rv.get('offset'))) < 1, `rv offset ${rv.get('offset')}`);
      assert.match(rv.get('reftime')!, /^[0-9a-f]{8}\.[0-9a-f]{8} \d{4}-\d\d-\d\dT/);

      // ntpq -c as: the sys.peer's association, and rv's `peer` names it.
      const asOut = (await ntpq(pair.client, ['-c', 'as'])).stdout;
      const asRows = asOut
        .split('\n')
        .map((l) => /^\s*(\d+)\s+(\d+)\s+([0-9a-f]{4})\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null);
      assert.equal(asRows.length, SILENT + 1);
      const sysRow = asRows.find((m) => m[7] === 'sys.peer');
      assert.ok(sysRow, asOut.slice(0, 500));
      assert.equal(sysRow[3]!.slice(0, 2), '96');
      assert.equal(sysRow[4], 'yes');
      assert.equal(sysRow[5], 'yes');
      assert.equal(rv.get('peer'), sysRow[2]);
      assert.equal(asRows.filter((m) => m[7] === 'reject').length, SILENT);

      // rv with a variable list, and rv of the peer's association.
      const one = (await ntpq(pair.client, ['-c', 'rv 0 offset,stratum'])).stdout.trim();
      // ntpq (Python) prints the float it parsed: a tiny offset shows as e.g. -5.9e-05.
      assert.match(one, /^offset=-?\d+(\.\d+)?(e[-+]\d+)?, stratum=2$/);
      const peerRv = rvVars((await ntpq(pair.client, ['-c', `rv ${sysRow[2]}`])).stdout);
      assert.equal(peerRv.get('srcadr'), SERVER);
      assert.equal(peerRv.get('srcport'), '123');
      assert.equal(peerRv.get('stratum'), '1');
      assert.equal(peerRv.get('refid'), 'LOCL');
      assert.equal(peerRv.get('hmode'), '3');
      const unknown = await ntpq(pair.client, ['-c', 'rv 0 nosuchvariable']);
      assert.match(unknown.stdout + unknown.stderr, /UNKNOWNVAR/);
      const opeers = parseNtpqPeers((await ntpq(pair.client, ['-c', 'opeers'])).stdout);
      assert.equal(opeers.find((p) => p.remote === SERVER)?.refid, '0.0.0.0', 'opeers local column');

      // Off-host (from the server's namespace, address .1 allowed by restrict): no amplification.
      const remote = await ntpq(pair.server, ['-c', 'timeout 1000', '-pn'], CLIENT);
      assert.match(remote.stdout + remote.stderr, /Server error code RESTRICT/);
      const requests = [
        ntpqRequest(OP.READSTAT),
        ntpqRequest(OP.READVAR),
        ntpqRequest(OP.READVAR, { data: 'stratum,offset,refid' }),
        ntpqRequest(OP.READVAR, { associd: Number(sysRow[2]) }),
        ntpqRequest(OP.READSTAT, { associd: Number(sysRow[2]) }),
        ntpqRequest(OP.UNSPEC),
        ntpqRequest(OP.WRITEVAR, { data: 'leap=1' }),
        ntpqRequest(OP.READ_MRU),
        ntpqRequest(OP.READVAR, { associd: 4242 }),
        // Big enough for its answer: answered in full.
        ntpqRequest(OP.READVAR, { data: 'stratum', extra: 32 }),
      ];
      const answers = await rawExchange(pair.server, SERVER, CLIENT, requests);
      let answeredBytes = 0;
      for (const [i, a] of answers.entries()) {
        assert.equal(a.responses.length, 1, `request ${i} gets exactly one datagram`);
        const total = a.responses.reduce((n, r) => n + r.length, 0);
        assert.ok(total <= a.request, `request ${i}: ${total} bytes answered to ${a.request}`);
        answeredBytes += total;
      }
      const h0 = decodeControlHeader(answers[0]!.responses[0]!)!;
      assert.ok(h0.error && h0.status >> 8 === CERR.RESTRICT, 'READSTAT from off-host: RESTRICT');
      const last = answers[answers.length - 1]!.responses[0]!;
      const hl = decodeControlHeader(last)!;
      assert.ok(!hl.error);
      assert.equal(last.subarray(12, 12 + hl.count).toString(), 'stratum=2\r\n');
      console.log(
        `# off-host: ${requests.length} requests, ${answers.reduce((n, a) => n + a.request, 0)} bytes in, ${answeredBytes} bytes out`,
      );

      // restrict ... noquery: nothing comes back, whatever the opcode.
      const denied = await rawExchange(pair.server, NOQUERY, CLIENT, [
        ntpqRequest(OP.READSTAT),
        ntpqRequest(OP.READVAR),
      ]);
      assert.deepEqual(
        denied.map((d) => d.responses.length),
        [0, 0],
      );

      // Mode 7: never answered, from off-host or from loopback.
      const m7remote = await rawExchange(pair.server, SERVER, CLIENT, [mode7Monlist()]);
      const m7local = await rawExchange(pair.client, '127.0.0.1', '127.0.0.1', [mode7Monlist()]);
      assert.equal(m7remote[0]!.responses.length, 0);
      assert.equal(m7local[0]!.responses.length, 0);
      // ... while the same socket answers mode 6 from loopback.
      const m6local = await rawExchange(pair.client, '127.0.0.1', '127.0.0.1', [
        ntpqRequest(OP.READVAR, { data: 'stratum' }),
      ]);
      assert.equal(m6local[0]!.responses.length, 1);
      await client.stop();

      // chrony.conf has no restrict: loopback only.
      const chronyStyle = await startRubidiumd({
        ns: pair.client,
        tag: 'ntpq-chrony',
        confName: 'chrony.conf',
        lines: [`server ${SERVER} iburst minpoll 0 maxpoll 0`, 'cmdport 0', 'bindcmdaddress $DIR/c2.sock'],
        ready: READY_SERVING,
      });
      cleanups.push(() => chronyStyle.stop());
      const local = await ntpq(pair.client, ['-c', 'rv 0 version']);
      assert.match(local.stdout, /version="rubidiumd /);
      const far = await rawExchange(pair.server, SERVER, CLIENT, [
        ntpqRequest(OP.READVAR, { data: 'stratum', extra: 64 }),
      ]);
      assert.equal(far[0]!.responses.length, 0, 'chrony.conf: no mode 6 answers off-host');
    } finally {
      await unwind(cleanups);
    }
  });
});
