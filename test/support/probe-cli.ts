/**
 * CLI around probeServer for use inside a namespace:
 *   ip netns exec NS node dist/test/support/probe-cli.js ADDR [PORT [N]] [--interval=MS] [--timeout=MS]
 * Prints one JSON ProbeResult on stdout; exit 0 if any request was answered, 2 if none, 1 on error.
 */
import { probeServer } from './probe.js';

async function main(): Promise<number> {
  const pos = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const flag = (name: string): number | undefined => {
    const a = process.argv.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? undefined : Number(a.slice(name.length + 3));
  };
  const [address, port = '123', count = '8'] = pos;
  if (!address) {
    process.stderr.write('usage: probe-cli.js ADDR [PORT [N]] [--interval=MS] [--timeout=MS]\n');
    return 1;
  }
  const opts: { count: number; intervalMs?: number; timeoutMs?: number } = { count: Number(count) };
  const interval = flag('interval');
  const timeout = flag('timeout');
  if (interval !== undefined) opts.intervalMs = interval;
  if (timeout !== undefined) opts.timeoutMs = timeout;
  const res = await probeServer(address, Number(port), opts);
  process.stdout.write(JSON.stringify(res) + '\n');
  return res.answered > 0 ? 0 : 2;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`probe-cli: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
