/**
 * `authdata` in chronyc 4.3's layout (client.c process_cmd_authdata): one line per source,
 * "%-27s %4s %5U %4d %4d %I %4d %4d %4d %4d" — name, mode (- SK NTS), key id, key type code,
 * key length in bits, time since the last NTS-KE, NTS-KE attempts, NAKs, cookies, cookie
 * length; `-v` adds the legend (printed in CSV mode too, as chronyc does).
 */
import type { AuthDataReport } from '../control/authdata.js';
import { formatInterval, type FormatOptions } from './format.js';

export const AUTHDATA_HEADER = 'Name/IP address             Mode KeyID Type KLen Last Atmp  NAK Cook CLen';

const AUTHDATA_LEGEND =
  [
    '                             .- Auth. mechanism (NTS, SK - symmetric key)',
    '                            |   Key length -.  Cookie length (bytes) -.',
    '                            |       (bits)  |  Num. of cookies --.    |',
    '                            |               |  Key est. attempts  |   |',
    '                            |               |           |         |   |',
  ].join('\n') + '\n';

const MODE: Record<AuthDataReport['mode'], string> = { none: '-', symmetric: 'SK', nts: 'NTS' };

/** chronyc prints 16-bit fields of the reply; clamp as cmdmon would. */
const u16 = (n: number): number => Math.max(0, Math.min(0xffff, Math.trunc(n)));

export function formatAuthData(list: AuthDataReport[], opts: FormatOptions & { verbose?: boolean } = {}): string {
  let out = opts.verbose ? AUTHDATA_LEGEND : '';
  if (!opts.csv) out += `${AUTHDATA_HEADER}\n${'='.repeat(AUTHDATA_HEADER.length)}\n`;
  for (const a of list) {
    const useAddr = (opts.noDns || opts.csv) && a.address !== '';
    let name = useAddr ? a.address : a.name || a.address;
    if (!useAddr && name.length > 25) name = name.slice(0, 24) + '>';
    const last = a.lastKeAgo === null ? null : Math.max(0, a.lastKeAgo);
    const keyId = a.keyId >>> 0;
    const nums = [u16(a.keyType), u16(a.keyLength)];
    const tail = [u16(a.keAttempts), u16(a.naks), u16(a.cookies), u16(a.cookieLength)];
    if (opts.csv) {
      const lastRaw = last === null || last >= 0xffffffff ? 4294967295 : Math.floor(last);
      out += [name, MODE[a.mode], keyId, ...nums, lastRaw, ...tail].join(',') + '\n';
    } else {
      out +=
        [
          name.padEnd(27),
          MODE[a.mode].padStart(4),
          String(keyId).padStart(5),
          ...nums.map((n) => String(n).padStart(4)),
          formatInterval(last),
          ...tail.map((n) => String(n).padStart(4)),
        ].join(' ') + '\n';
    }
  }
  return out;
}
