/**
 * Entry point of nts-prep.ts inside the benchmark namespace:
 *   node dist/bench/capacity/nts-prep-cli.js --ke-port P --ntp-port P --ca CA.pem --count N --out FILE
 * Prints one JSON NtsPrepSummary on stdout; exit 0, or 1 with the reason on stderr.
 */
import { buildNtsPackets, type NtsPrepOptions } from './nts-prep.js';

function parse(argv: string[]): NtsPrepOptions {
  const get = (flag: string): string => {
    const i = argv.indexOf(flag);
    const v = i >= 0 ? argv[i + 1] : undefined;
    if (v === undefined) throw new Error(`missing ${flag}`);
    return v;
  };
  const int = (flag: string): number => {
    const v = Number(get(flag));
    if (!Number.isInteger(v) || v <= 0) throw new Error(`bad ${flag}`);
    return v;
  };
  return {
    kePort: int('--ke-port'),
    ntpPort: int('--ntp-port'),
    caCert: get('--ca'),
    count: int('--count'),
    out: get('--out'),
  };
}

buildNtsPackets(parse(process.argv.slice(2))).then(
  (summary) => process.stdout.write(JSON.stringify(summary) + '\n'),
  (e: unknown) => {
    process.stderr.write(`nts-prep: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
