/**
 * Served-time probe: measures how far a server's served time is from the host clock (the truth
 * every test daemon runs against, since none may adjust it).
 *
 * Sends N NTPv4 mode-3 requests, and from each answer's T1..T4 computes
 *   offset = ((T2 − T1) + (T3 − T4)) / 2   (server time − host time; positive: server ahead)
 *   delay  = (T4 − T1) − (T3 − T2)
 * and reports the minimum-delay sample. T1/T4 are kernel software timestamps when the native
 * addon is loaded (src/io/udp.ts), else stamps taken in the callback from realtimeNow().
 *
 * A namespace cannot be entered from inside this process, so tests run it through probe-cli.js
 * with `ip netns exec` (`probeInNs`).
 */
import { randomBytes } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openUdpSocket, type TimestampedSocket } from '../../src/io/udp.js';
import { realtimeNow, realtimeSource } from '../../src/io/realtime.js';
import { diffSeconds, ntp64ToInstant, type Instant } from '../../src/time/ntp-time.js';
import { runInNs } from './netns.js';

export interface ProbeSample {
  /** Client transmit, server receive, server transmit, client receive (ns since the epoch). */
  t1: string;
  t2: string;
  t3: string;
  t4: string;
  offset: number;
  delay: number;
  stratum: number;
  leap: number;
  version: number;
  refId: string;
  /** Whether T1 came from a kernel TX timestamp (else from the clock just before send). */
  txKernel: boolean;
}

export interface ProbeResult {
  address: string;
  port: number;
  sent: number;
  answered: number;
  /** The minimum-delay sample; null when nothing answered. */
  best: ProbeSample | null;
  /** best.offset / best.delay (NaN when nothing answered). */
  offset: number;
  delay: number;
  timestamping: 'kernel' | 'daemon';
  realtimeSource: string;
  samples: ProbeSample[];
}

export interface ProbeOptions {
  count?: number;
  /** Gap between requests (default 50 ms). */
  intervalMs?: number;
  /** How long to wait for each answer (default 1000 ms). */
  timeoutMs?: number;
}

interface Pending {
  nonce: Buffer;
  t1Soft: Instant;
  t1Kernel: Instant | null;
  txId: number;
  resolve(s: ProbeSample | null): void;
}

/** Probes `address:port` from the current namespace. */
export async function probeServer(address: string, port = 123, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const count = opts.count ?? 8;
  const intervalMs = opts.intervalMs ?? 50;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const family = address.includes(':') ? 6 : 4;
  let pending: Pending | null = null;
  const sock: TimestampedSocket = await openUdpSocket({
    family,
    address: family === 6 ? '::' : '0.0.0.0',
    port: 0,
    onDatagram(data, from, rxRealtime) {
      const p = pending;
      if (!p || from.port !== port || data.length < 48) return;
      const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      // The origin timestamp must echo our transmit field (a random nonce, as chrony sends).
      if (!buf.subarray(24, 32).equals(p.nonce)) return;
      const mode = buf[0]! & 7;
      if (mode !== 4) return;
      const t1 = p.t1Kernel ?? p.t1Soft;
      const t2 = ntp64ToInstant(buf.readBigUInt64BE(32), t1);
      const t3 = ntp64ToInstant(buf.readBigUInt64BE(40), t1);
      const t4 = rxRealtime;
      const offset = (diffSeconds(t2, t1) + diffSeconds(t3, t4)) / 2;
      const delay = diffSeconds(t4, t1) - diffSeconds(t3, t2);
      const stratum = buf[1]!;
      const refRaw = buf.subarray(12, 16);
      const refId = stratum <= 1 ? refRaw.toString('latin1').replace(/\0+$/, '') : Array.from(refRaw).join('.');
      pending = null;
      p.resolve({
        t1: t1.toString(),
        t2: t2.toString(),
        t3: t3.toString(),
        t4: t4.toString(),
        offset,
        delay,
        stratum,
        leap: buf[0]! >> 6,
        version: (buf[0]! >> 3) & 7,
        refId,
        txKernel: p.t1Kernel !== null,
      });
    },
    onTxTimestamp(id, txRealtime) {
      if (pending && pending.txId === id) pending.t1Kernel = txRealtime;
    },
  });
  const samples: ProbeSample[] = [];
  try {
    for (let i = 0; i < count; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, intervalMs));
      const pkt = Buffer.alloc(48);
      pkt[0] = (0 << 6) | (4 << 3) | 3; // LI 0, VN 4, mode 3
      const nonce = randomBytes(8);
      nonce.copy(pkt, 40);
      const sample = await new Promise<ProbeSample | null>((resolve) => {
        const timer = setTimeout(() => {
          pending = null;
          resolve(null);
        }, timeoutMs);
        const p: Pending = {
          nonce,
          t1Soft: 0n,
          t1Kernel: null,
          txId: -1,
          resolve: (s) => {
            clearTimeout(timer);
            resolve(s);
          },
        };
        pending = p;
        p.t1Soft = realtimeNow();
        p.txId = sock.send(pkt, { address, port });
      });
      if (sample) samples.push(sample);
    }
  } finally {
    sock.close();
  }
  let best: ProbeSample | null = null;
  for (const s of samples) if (!best || s.delay < best.delay) best = s;
  return {
    address,
    port,
    sent: count,
    answered: samples.length,
    best,
    offset: best ? best.offset : NaN,
    delay: best ? best.delay : NaN,
    timestamping: sock.timestamping,
    realtimeSource,
    samples,
  };
}

const cliPath = join(dirname(fileURLToPath(import.meta.url)), 'probe-cli.js');

/**
 * Runs the probe inside namespace `ns` (`ip netns exec NS node probe-cli.js ADDR PORT N`, with
 * the Node running this test). Throws when no request was answered.
 */
export async function probeInNs(
  ns: string,
  address: string,
  port = 123,
  opts: ProbeOptions & { allowNoAnswer?: boolean } = {},
): Promise<ProbeResult> {
  const args = [cliPath, address, String(port), String(opts.count ?? 8)];
  if (opts.intervalMs !== undefined) args.push(`--interval=${opts.intervalMs}`);
  if (opts.timeoutMs !== undefined) args.push(`--timeout=${opts.timeoutMs}`);
  const r = await runInNs(ns, process.execPath, args, { timeoutMs: 60_000, check: false });
  if (r.code !== 0 && r.code !== 2)
    throw new Error(`probe-cli failed (${r.code ?? r.signal}):\n${r.stdout}${r.stderr}`);
  let res: ProbeResult;
  try {
    res = JSON.parse(r.stdout) as ProbeResult;
  } catch {
    throw new Error(`probe-cli: bad output:\n${r.stdout}${r.stderr}`);
  }
  if (res.answered === 0 && !opts.allowNoAnswer) {
    throw new Error(`probe: no answer from ${address}:${port} in ${ns} (${res.sent} requests)`);
  }
  return res;
}
