/**
 * Echo throughput on loopback: how many 48-byte datagrams per second one server thread echoes
 * through the batched socket (src/io/batch-udp.ts: recvmmsg + one stamped sendmsg per answer),
 * the addon's per-datagram socket (udpOpen/udpSend: a Buffer, an address string and a bigint
 * per datagram), and node:dgram.
 *
 *   npx tsc -p . && flock /tmp/rubidium-bench.lock node dist/bench/batch-udp.js [seconds=3] [window=512]
 *
 * The server runs in a child process (one core); the client is a batched socket in this
 * process keeping `window` requests in flight (closed loop, refilled after loss), from 16
 * source ports. Every server echo writes a transmit timestamp like an NTP answer (TX_STAMP /
 * stampOffsetNs; node:dgram writes it in JS). Prints echoes/s and the CPU use of both sides.
 * On loopback the sender pays for delivery (softirq runs in its context), so on a 2-core
 * machine the client usually saturates first: "echoes per server CPU-second" is the figure that
 * compares the server paths.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { META_INTS, TX_STAMP, openBatchUdpSocket, type BatchUdpSocket } from '../src/io/batch-udp.js';
import { native } from '../src/io/native.js';
import { realtimeNow } from '../src/io/realtime.js';
import { instantToNtp64 } from '../src/time/ntp-time.js';

type Variant = 'batch' | 'native' | 'dgram';
const VARIANTS: Variant[] = ['batch', 'native', 'dgram'];

function serve(variant: Variant): void {
  const ready = (port: number) => process.stdout.write(`${port}\n`);
  if (variant === 'batch') {
    const s = openBatchUdpSocket({
      family: 4,
      address: '127.0.0.1',
      port: 0,
      onRx(sock, n) {
        const { rxData, rxMeta, txData, txMeta, slotBytes } = sock;
        for (let i = 0; i < n; i++) {
          const len = Math.min(rxMeta[i * META_INTS]!, 48);
          txData.set(rxData.subarray(i * slotBytes, i * slotBytes + len), i * slotBytes);
          for (let k = 0; k < META_INTS; k++) txMeta[i * META_INTS + k] = rxMeta[i * META_INTS + k]!;
          txMeta[i * META_INTS] = len;
          txMeta[i * META_INTS + 7] = len >= 48 ? TX_STAMP : 0;
        }
        sock.send(n);
      },
    });
    if (!s) throw new Error('addon without batch sockets');
    ready(s.localPort());
  } else if (variant === 'native') {
    if (!native) throw new Error('addon not loaded');
    const a = native;
    const h = a.udpOpen(4, '127.0.0.1', 0, (kind, ...args) => {
      if (kind !== 'rx') return;
      const [data, address, port] = args as [Buffer, string, number];
      try {
        a.udpSend(h, data, address, port, data.length >= 48 ? 0n : undefined);
      } catch {
        // EAGAIN under load: dropped, as a server would.
      }
    });
    ready(a.udpLocalPort(h));
  } else {
    const s = dgram.createSocket('udp4');
    s.on('message', (msg, rinfo) => {
      if (msg.length >= 48) msg.writeBigUInt64BE(instantToNtp64(realtimeNow()), 40);
      s.send(msg, rinfo.port, rinfo.address);
    });
    s.bind(0, '127.0.0.1', () => ready(s.address().port));
  }
}

/** utime + stime of a process, seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ = 100 on Linux
}

interface Result {
  variant: Variant;
  echoesPerS: number;
  serverCpu: number;
  clientCpu: number;
}

async function measure(variant: Variant, seconds: number, window: number): Promise<Result> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', variant], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((res, rej) => {
    child.stdout.once('data', (d: Buffer) => res(Number(d.toString().trim())));
    child.once('exit', (code) => rej(new Error(`server exited (${code})`)));
  });
  let received = 0;
  let counting = false;
  let counted = 0;
  const clients: BatchUdpSocket[] = [];
  const fill = (sock: BatchUdpSocket, n: number) => {
    for (let i = 0; i < n; i++) {
      const m = i * META_INTS;
      sock.txMeta[m] = 48;
      sock.txMeta[m + 1] = 4;
      sock.txMeta[m + 2] = port;
      sock.txMeta[m + 3] = 0x7f000001;
      sock.txMeta[m + 7] = 0;
    }
    sock.send(n);
  };
  const perClient = Math.max(1, Math.floor(window / 16));
  for (let c = 0; c < 16; c++) {
    const sock = openBatchUdpSocket({
      family: 4,
      address: '127.0.0.1',
      port: 0,
      batch: Math.min(256, perClient),
      onRx(s, n) {
        received += n;
        if (counting) counted += n;
        fill(s, n);
      },
    });
    if (!sock) throw new Error('addon without batch sockets');
    clients.push(sock);
  }
  // Start, and refill every 20 ms if datagrams were lost (closed loop with a fixed window).
  for (const c of clients) fill(c, c.batch);
  let last = received;
  const refill = setInterval(() => {
    if (received === last) {
      for (const c of clients) fill(c, c.batch);
    }
    last = received;
  }, 20);
  await new Promise((r) => setTimeout(r, 500)); // warm-up
  const cpu0 = cpuSeconds(child.pid!);
  const own0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  counting = true;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  counting = false;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = cpuSeconds(child.pid!);
  const own = process.cpuUsage(own0);
  clearInterval(refill);
  for (const c of clients) c.close();
  child.kill();
  return {
    variant,
    echoesPerS: counted / elapsed,
    serverCpu: (cpu1 - cpu0) / elapsed,
    clientCpu: (own.user + own.system) / 1e6 / elapsed,
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') {
    serve(process.argv[3] as Variant);
    return;
  }
  const seconds = Number(process.argv[2] ?? 3);
  const window = Number(process.argv[3] ?? 512);
  console.log(`echo on loopback, 48-byte datagrams, ${seconds} s each, window ${window}, server in one process`);
  const results: Result[] = [];
  for (const v of VARIANTS) {
    const r = await measure(v, seconds, window);
    results.push(r);
    console.log(
      `${v.padEnd(7)} ${Math.round(r.echoesPerS).toString().padStart(9)} echoes/s   server CPU ${(r.serverCpu * 100).toFixed(0)} %` +
        `   client CPU ${(r.clientCpu * 100).toFixed(0)} %` +
        `   echoes per server CPU-second ${Math.round(r.echoesPerS / Math.max(r.serverCpu, 1e-9))}`,
    );
  }
  const base = results.find((r) => r.variant === 'dgram')!.echoesPerS;
  for (const r of results) console.log(`${r.variant}: ${(r.echoesPerS / base).toFixed(2)}× node:dgram`);
}

await main();
