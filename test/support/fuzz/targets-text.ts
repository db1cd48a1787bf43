/**
 * Fuzz targets of the text and file formats: the JSON control protocol, chrony.conf, ntp.conf,
 * both key-file dialects, leap-seconds.list and TZif. A configuration parser may only throw its
 * documented error type, and the message must name the place (file:line, or file for whole-file
 * errors such as a TZif header).
 */
import fc from 'fast-check';
import { parseRequest, encodeResponse, decodeResponse, MAX_ARGS } from '../../../src/control/protocol.js';
import { parseConfigText, formatConfig, ConfigError } from '../../../src/config/chrony-conf.js';
import { DIRECTIVE_STATUS, SOURCE_OPTION_STATUS } from '../../../src/config/directive-status.js';
import { parseNtpConfText } from '../../../src/config/ntp-conf.js';
import { parseKeysText } from '../../../src/config/keys-file.js';
import { LeapFileError, parseLeapSecondsList } from '../../../src/leap/leap-seconds-list.js';
import { leapScheduleFromTzif } from '../../../src/leap/tzfile.js';
import { mutatedBytes, mutatedText } from './mutate.js';
import { hexToBytes, seedsOf } from './seeds.js';
import { CHRONY_CONF_SEEDS, JSON_CONTROL_SEEDS, KEYS_SEEDS, NTP_CONF_SEEDS } from './text-seeds.js';
import { expect, type FuzzTarget } from './target.js';

const CONF = 'fuzz.conf';
const INCLUDED = '/fuzz/inc.conf';

/** The error must be the documented type and start with "FILE:LINE: " or "FILE: ". */
function expectPlaceError(e: unknown, type: new (...a: never[]) => Error, files: readonly string[]): void {
  if (!(e instanceof type)) throw e;
  // Included files are named by their path (globs and sourcedir entries under /fuzz/).
  const ok = files.some((f) => e.message.startsWith(`${f}:`)) || /^\/fuzz\/\S*?(:\d+)?: /.test(e.message);
  expect(ok, `${type.name} without its place: ${e.message.slice(0, 80)}`);
}

// ---- JSON control protocol ----

const controlTarget: FuzzTarget<string | Uint8Array> = {
  name: 'control-json',
  description: 'control protocol parseRequest: valid requests survive a re-encode, bad ones get an error',
  arbitrary: fc.oneof(
    { weight: 3, arbitrary: mutatedText(JSON_CONTROL_SEEDS, 6, 10_000) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
    {
      weight: 1,
      arbitrary: fc
        .record({ cmd: fc.string({ maxLength: 70 }), args: fc.array(fc.string({ maxLength: 20 }), { maxLength: 40 }) })
        .map((o) => JSON.stringify(o)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 9000 }) },
  ),
  check(raw) {
    const r = parseRequest(raw);
    if (!r.ok) return expect(typeof r.error === 'string' && r.error.length < 200, 'error message missing or huge');
    expect(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(r.request.cmd), 'bad command name accepted');
    expect(r.request.args.length <= MAX_ARGS, 'too many args accepted');
    const again = parseRequest(JSON.stringify(r.request));
    expect(again.ok && JSON.stringify(again.request) === JSON.stringify(r.request), 're-encoded request differs');
  },
};

const controlResponseTarget: FuzzTarget<unknown> = {
  name: 'control-response',
  description: 'encodeResponse/decodeResponse round trip, responses bounded to 64 KiB',
  arbitrary: fc.jsonValue({ maxDepth: 4 }),
  check(data) {
    const text = encodeResponse({ ok: true, data });
    expect(Buffer.byteLength(text) <= 64 * 1024, 'response over 64 KiB');
    const back = decodeResponse(text);
    expect(back.ok, 'ok response decoded as an error');
    if (back.ok) expect(JSON.stringify(back.data) === JSON.stringify(data ?? null), 'response data differs');
  },
};

// ---- chrony.conf ----

const WORDS = [
  ...Object.keys(SOURCE_OPTION_STATUS),
  'iburst',
  '192.0.2.1',
  '2001:db8::1',
  '10/8',
  'all',
  '-1',
  '0',
  '1e9',
  'nan',
  '0x10',
  '1.5',
  '*',
  '/fuzz/*.conf',
  '"',
  '\\',
  'interval',
  'burst',
  'leak',
  'stratum',
  'orphan',
  'distance',
];

function directiveLines(names: readonly string[]): fc.Arbitrary<string> {
  return fc
    .array(
      fc.tuple(
        fc.constantFrom(...names),
        fc.array(fc.oneof(fc.constantFrom(...WORDS), fc.string({ maxLength: 12 })), { maxLength: 8 }),
      ),
      { minLength: 1, maxLength: 8 },
    )
    .map((lines) => lines.map(([d, args]) => [d, ...args].join(' ')).join('\n') + '\n');
}

// Every included file is itself an include of the next: recursion must end at the depth limit.
const chronyFs = {
  readFile: (p: string) => (p.startsWith('/fuzz/') ? `include ${INCLUDED}\nserver 192.0.2.9 iburst\n` : missing(p)),
  readdir: (d: string) => (d.startsWith('/fuzz') ? ['a.conf', 'b.sources'] : missing(d)),
};

function missing(p: string): never {
  throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
}

const chronyConfTarget: FuzzTarget<string> = {
  name: 'chrony-conf',
  description: 'chrony.conf parser: a Config or a ConfigError naming file:line; formatConfig of the result works',
  maxMs: 200,
  arbitrary: fc.oneof(
    { weight: 2, arbitrary: mutatedText(CHRONY_CONF_SEEDS, 8) },
    { weight: 2, arbitrary: directiveLines(Object.keys(DIRECTIVE_STATUS)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
  ),
  check(text) {
    let c;
    try {
      c = parseConfigText(text, CONF, { fs: chronyFs });
    } catch (e) {
      return expectPlaceError(e, ConfigError, [CONF, INCLUDED]);
    }
    expect(typeof formatConfig(c) === 'string', 'formatConfig failed');
  },
};

// ---- ntp.conf ----

const NTP_DIRECTIVES = [
  'server',
  'pool',
  'peer',
  'restrict',
  'driftfile',
  'leapfile',
  'statsdir',
  'statistics',
  'filegen',
  'keys',
  'trustedkey',
  'controlkey',
  'tos',
  'tinker',
  'discard',
  'includefile',
  'broadcast',
  'manycastclient',
  'fudge',
  'refclock',
  'logfile',
  'enable',
  'disable',
  'interface',
  'nts',
];

const ntpConfTarget: FuzzTarget<string> = {
  name: 'ntp-conf',
  description: 'ntp.conf parser (NTPsec/Classic): a Config or a ConfigError naming file:line',
  maxMs: 200,
  arbitrary: fc.oneof(
    { weight: 2, arbitrary: mutatedText(NTP_CONF_SEEDS, 8) },
    { weight: 2, arbitrary: directiveLines(NTP_DIRECTIVES) },
    { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
  ),
  check(text) {
    try {
      parseNtpConfText(text, CONF, {
        readFile: (p) => (p.startsWith('/fuzz/') ? `includefile ${INCLUDED}\n` : missing(p)),
        readdir: (d) => missing(d),
      });
    } catch (e) {
      expectPlaceError(e, ConfigError, [CONF, INCLUDED]);
    }
  },
};

// ---- key files ----

const keysTarget: FuzzTarget<{ text: string; dialect: 'chrony' | 'ntp' }> = {
  name: 'keys-file',
  description: 'chrony and ntp key files: keys with the right lengths, or a ConfigError naming file:line',
  arbitrary: fc.oneof(
    fc.record({ text: mutatedText(KEYS_SEEDS.chrony, 8), dialect: fc.constant('chrony' as const) }),
    fc.record({ text: mutatedText(KEYS_SEEDS.ntp, 8), dialect: fc.constant('ntp' as const) }),
    fc.record({ text: fc.string({ maxLength: 200 }), dialect: fc.constantFrom('chrony' as const, 'ntp' as const) }),
  ),
  check({ text, dialect }) {
    let keys;
    try {
      keys = parseKeysText(text, 'fuzz.keys', dialect);
    } catch (e) {
      return expectPlaceError(e, ConfigError, ['fuzz.keys']);
    }
    const ids = new Set<number>();
    for (const k of keys) ids.add(k.id);
    expect(keys.length <= text.split('\n').length, 'more keys than lines');
  },
};

// ---- leap-seconds.list and TZif ----

function fileSeed(prefix: string): string[] {
  return seedsOf('file')
    .filter((s) => s.source.startsWith(prefix))
    .map((s) => Buffer.from(s.hex, 'hex').toString('latin1'));
}

const leapListTarget: FuzzTarget<string> = {
  name: 'leap-seconds-list',
  description: 'leap-seconds.list: a schedule or a LeapFileError naming file:line',
  arbitrary: fc.oneof(
    { weight: 4, arbitrary: mutatedText(leapListSeeds(), 8, 70_000) },
    { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
  ),
  check(text) {
    try {
      const l = parseLeapSecondsList(text, 'fuzz.list');
      expect(l.entries.length > 0, 'an empty table accepted');
    } catch (e) {
      expectPlaceError(e, LeapFileError, ['fuzz.list']);
    }
  },
};

function leapListSeeds(): string[] {
  const s = fileSeed('leap-seconds.list');
  return s.length ? s : ['#$ 3676924800\n#@ 3929443200\n2272060800 10 # 1 Jan 1972\n'];
}

const tzifTarget: FuzzTarget<Uint8Array> = {
  name: 'tzfile',
  description: 'TZif leap records (right/UTC): a schedule or a LeapFileError naming the file',
  arbitrary: fc.oneof(
    {
      weight: 4,
      arbitrary: mutatedBytes(
        seedsOf('file')
          .filter((s) => s.source.startsWith('tzfile'))
          .map((s) => hexToBytes(s.hex))
          .concat([Uint8Array.from(Buffer.from('TZif2' + '\0'.repeat(39), 'latin1'))]),
        8,
        8192,
      ),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  ),
  check(data) {
    try {
      leapScheduleFromTzif(data, 'fuzz.tzif');
    } catch (e) {
      expectPlaceError(e, LeapFileError, ['fuzz.tzif']);
    }
  },
};

export function textTargets(): FuzzTarget[] {
  return [
    controlTarget,
    controlResponseTarget,
    chronyConfTarget,
    ntpConfTarget,
    keysTarget,
    leapListTarget,
    tzifTarget,
  ] as FuzzTarget[];
}
