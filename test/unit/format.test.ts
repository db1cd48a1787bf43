import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SOURCES_HEADER,
  addressToRefId,
  cExp,
  cFixed,
  formatActivity,
  formatClients,
  formatInterval,
  formatNanoseconds,
  formatNtpData,
  formatNtpDataList,
  formatServerStats,
  formatSignedNanoseconds,
  formatSourceStats,
  formatSources,
  formatStatus,
  formatTracking,
  formatWaitsyncTry,
  refIdToString,
} from '../../src/cli/format.js';
import type { NtpDataReport, ServerStatsReport, SourceReport, TrackingReport } from '../../src/control/reports.js';

const ns = (isoUtc: string): string => (BigInt(Date.parse(isoUtc)) * 1_000_000n).toString();
const trimLines = (s: string): string =>
  s
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');

// The example of chronyc(1) 4.3, "tracking".
const TRACKING_EXAMPLE = `Reference ID    : CB00710F (foo.example.net)
Stratum         : 3
Ref time (UTC)  : Fri Jan 27 09:49:17 2017
System time     : 0.000006523 seconds slow of NTP time
Last offset     : -0.000006747 seconds
RMS offset      : 0.000035822 seconds
Frequency       : 3.225 ppm slow
Residual freq   : -0.000 ppm
Skew            : 0.129 ppm
Root delay      : 0.013639022 seconds
Root dispersion : 0.001100737 seconds
Update interval : 64.2 seconds
Leap status     : Normal
`;

const tracking: TrackingReport = {
  refId: 0xcb00710f,
  refName: 'foo.example.net',
  stratum: 3,
  refTimeNs: ns('2017-01-27T09:49:17Z'),
  systemTimeOffset: 0.000006523,
  lastOffset: -0.000006747,
  rmsOffset: 0.000035822,
  frequencyPpm: -3.225,
  residualFreqPpm: -0.0000001,
  skewPpm: 0.129,
  rootDelay: 0.013639022,
  rootDispersion: 0.001100737,
  updateInterval: 64.2,
  leapStatus: 'Normal',
};

test('tracking matches the chronyc man page example exactly', () => {
  assert.equal(formatTracking(tracking), TRACKING_EXAMPLE);
});

test('tracking: fast clock, unsynchronised local reference, sign words', () => {
  const out = formatTracking({
    ...tracking,
    refId: 0x7f7f0101,
    refName: '',
    refTimeNs: '0',
    systemTimeOffset: -0.5,
    frequencyPpm: 12.3456,
    leapStatus: 'Not synchronised',
  });
  assert.match(out, /^Reference ID    : 7F7F0101 \(\)\n/);
  assert.match(out, /Ref time \(UTC\)  : Thu Jan 01 00:00:00 1970\n/);
  assert.match(out, /System time     : 0\.500000000 seconds fast of NTP time\n/);
  assert.match(out, /Frequency       : 12\.346 ppm fast\n/);
  assert.match(out, /Leap status     : Not synchronised\n$/);
  // A reference clock: the refid as text.
  assert.match(
    formatTracking({ ...tracking, refId: 0x47505300, refName: '' }),
    /^Reference ID    : 47505300 \(GPS\)\n/,
  );
});

test('tracking CSV is one line of raw values', () => {
  assert.equal(
    formatTracking(tracking, { csv: true }),
    'CB00710F,foo.example.net,3,1485510557.000000000,0.000006523,-0.000006747,0.000035822,-3.225,-0.000,0.129,0.013639022,0.001100737,64.2,Normal\n',
  );
});

// The example of chronyc(1) 4.3, "sources" (the man page strips trailing blanks of the header).
const SOURCES_EXAMPLE = `MS Name/IP address         Stratum Poll Reach LastRx Last sample
===============================================================================
#* GPS0                          0   4   377    11   -479ns[ -621ns] +/-  134ns
^? foo.example.net               2   6   377    23   -923us[ -924us] +/-   43ms
^+ bar.example.net               1   6   377    21  -2629us[-2619us] +/-   86ms
`;

const sources: SourceReport[] = [
  {
    mode: 'refclock',
    state: '*',
    name: 'GPS0',
    address: '',
    port: 0,
    stratum: 0,
    poll: 4,
    reach: 0o377,
    lastRxAgo: 11,
    adjustedOffset: -479e-9,
    measuredOffset: -621e-9,
    error: 134e-9,
  },
  {
    mode: 'server',
    state: '?',
    name: 'foo.example.net',
    address: '192.0.2.1',
    port: 123,
    stratum: 2,
    poll: 6,
    reach: 0o377,
    lastRxAgo: 23,
    adjustedOffset: -923e-6,
    measuredOffset: -924e-6,
    error: 43e-3,
  },
  {
    mode: 'server',
    state: '+',
    name: 'bar.example.net',
    address: '192.0.2.2',
    port: 123,
    stratum: 1,
    poll: 6,
    reach: 0o377,
    lastRxAgo: 21,
    adjustedOffset: -2629e-6,
    measuredOffset: -2619e-6,
    error: 86e-3,
  },
];

test('sources matches the chronyc man page example; header has chronyc trailing blanks and 79 "="', () => {
  const out = formatSources(sources);
  assert.equal(trimLines(out), SOURCES_EXAMPLE);
  const lines = out.split('\n');
  assert.equal(lines[0], SOURCES_HEADER);
  assert.equal(lines[0]!.length, 79);
  assert.equal(lines[1], '='.repeat(79));
  for (const l of lines.slice(2, 5)) assert.equal(l.length, 79);
});

test('sources -v prints chronyc legend before the header; -n prints addresses; long names cut with >', () => {
  const out = formatSources(sources.slice(1, 2), { verbose: true });
  const lines = out.split('\n');
  assert.equal(lines[0], '');
  assert.equal(lines[1], "  .-- Source mode  '^' = server, '=' = peer, '#' = local clock.");
  assert.equal(lines[2], " / .- Source state '*' = current best, '+' = combined, '-' = not combined,");
  assert.equal(lines[3], "| /             'x' = may be in error, '~' = too variable, '?' = unusable.");
  assert.equal(lines[7], '||                                \\     |          |  zzzz = estimated error.');
  assert.equal(lines[8], '||                                 |    |           \\');
  assert.equal(lines[9], SOURCES_HEADER);
  assert.match(formatSources(sources.slice(1, 2), { noDns: true }), /\n\^\? 192\.0\.2\.1 {21}2   6/);
  const long = formatSources([
    { ...sources[1]!, name: 'a-very-long-hostname.example.net', lastRxAgo: null, state: '*' },
  ]);
  assert.match(long, /\n\^\* a-very-long-hostname.exa> {5}2   6   377     -   -923us/);
});

test('sources CSV', () => {
  assert.equal(
    formatSources(sources.slice(1), { csv: true, verbose: true }),
    '^,?,192.0.2.1,2,6,377,23,-0.000923000,-0.000924000,0.043000000\n^,+,192.0.2.2,1,6,377,21,-0.002629000,-0.002619000,0.086000000\n',
  );
});

test('sourcestats: header from the man page, chronyc 4.3 column layout', () => {
  const out = formatSourceStats([
    {
      name: 'foo.example.net',
      address: '192.0.2.1',
      np: 11,
      nr: 5,
      span: 2760,
      frequencyPpm: -0.001,
      freqSkewPpm: 0.045,
      offset: 12e-6,
      stdDev: 25e-6,
    },
  ]);
  // The man page row ("0.045      1us") comes from an older chronyc that printed the offset
  // unsigned; 4.3 prints "%+S" (and below 9999.5 ns the unit is ns, so "1us" cannot occur).
  assert.equal(
    out,
    'Name/IP Address            NP  NR  Span  Frequency  Freq Skew  Offset  Std Dev\n' +
      '='.repeat(78) +
      '\nfoo.example.net            11   5   46m     -0.001      0.045    +12us    25us\n',
  );
  const v = formatSourceStats([], { verbose: true }).split('\n');
  assert.equal(v[0], '                             .- Number of sample points in measurement set.');
  assert.equal(v[8], '                           |   |   |     |          |          |             |');
  assert.equal(v[9], 'Name/IP Address            NP  NR  Span  Frequency  Freq Skew  Offset  Std Dev');
  assert.equal(
    formatSourceStats(
      [
        {
          name: 'x',
          address: '192.0.2.1',
          np: 3,
          nr: 2,
          span: 130,
          frequencyPpm: 123456,
          freqSkewPpm: 2.5,
          offset: -0.5,
          stdDev: 0.002,
        },
      ],
      { csv: true },
    ),
    '192.0.2.1,3,2,130,123456.000,2.500,-0.500000000,0.002000000\n',
  );
});

test('unit columns: intervals, offsets with ns/us/ms/s suffixes', () => {
  assert.equal(formatInterval(0), '   0');
  assert.equal(formatInterval(1199), '1199');
  assert.equal(formatInterval(1200), ' 20m');
  assert.equal(formatInterval(35999), '599m');
  assert.equal(formatInterval(36000), ' 10h');
  assert.equal(formatInterval(345600), '  4d');
  assert.equal(formatInterval(86400 * 1000), '  2y');
  assert.equal(formatInterval(null), '   -');
  assert.equal(formatSignedNanoseconds(0), '   +0ns');
  assert.equal(formatSignedNanoseconds(9999e-9), '+9999ns');
  assert.equal(formatSignedNanoseconds(9999.6e-9), '  +10us');
  assert.equal(formatSignedNanoseconds(-0.0123), '  -12ms');
  assert.equal(formatSignedNanoseconds(12.34), ' +12.3s');
  assert.equal(formatSignedNanoseconds(-5000), ' -5000s');
  assert.equal(formatSignedNanoseconds(200000), ' +3333m');
  assert.equal(formatSignedNanoseconds(1e-6), '+1000ns');
  assert.equal(formatNanoseconds(-0.043), '  43ms');
  assert.equal(formatNanoseconds(1.5), '1500ms');
  assert.equal(formatNanoseconds(12.34), ' 12.3s');
});

test('C-compatible number formatting (glibc rounding, exponent digits)', () => {
  assert.equal(cFixed(2.5, 0), '2');
  assert.equal(cFixed(3.5, 0), '4');
  assert.equal(cFixed(0.125, 2), '0.12');
  assert.equal(cFixed(0.375, 2), '0.38');
  assert.equal(cFixed(0.1, 1), '0.1');
  assert.equal(cFixed(-0.0000001, 3, 0, true), '-0.000');
  assert.equal(cFixed(1.5, 3, 8, true), '  +1.500');
  assert.equal(cExp(0.00001234, 3, 10), ' 1.234e-05');
  assert.equal(cExp(9.9996, 3), '1.000e+01');
  assert.equal(cExp(123456, 3, 0, true), '+1.235e+05');
  assert.equal(cExp(-1.5e-10, 3, 10), '-1.500e-10');
  assert.equal(cExp(0, 3, 10), ' 0.000e+00');
  assert.equal(cExp(12.5, 1, 7), '1.2e+01'); // exact tie: glibc rounds to even
  assert.equal(cExp(13.5, 1, 7), '1.4e+01');
});

test('ntpdata matches the chronyc man page example exactly', () => {
  const r: NtpDataReport = {
    remoteAddress: '203.0.113.15',
    remotePort: 123,
    localAddress: '203.0.113.74',
    leap: 0,
    version: 4,
    mode: 4,
    stratum: 1,
    poll: 10,
    precision: -24,
    rootDelay: 0.000015,
    rootDispersion: 0.000015,
    refId: 0x47505300,
    refTimeNs: ns('2016-11-25T15:22:12Z'),
    offset: -0.000060878,
    peerDelay: 0.000175634,
    peerDispersion: 0.000000681,
    responseTime: 0.00005305,
    jitterAsymmetry: 0,
    ntpTests: '111 111 1111',
    interleaved: false,
    authenticated: false,
    txTimestamping: 'Kernel',
    rxTimestamping: 'Kernel',
    totalTx: 24,
    totalRx: 24,
    totalValidRx: 24,
    totalGoodRx: 22,
  };
  const expected = `Remote address  : 203.0.113.15 (CB00710F)
Remote port     : 123
Local address   : 203.0.113.74 (CB00714A)
Leap status     : Normal
Version         : 4
Mode            : Server
Stratum         : 1
Poll interval   : 10 (1024 seconds)
Precision       : -24 (0.000000060 seconds)
Root delay      : 0.000015 seconds
Root dispersion : 0.000015 seconds
Reference ID    : 47505300 (GPS)
Reference time  : Fri Nov 25 15:22:12 2016
Offset          : -0.000060878 seconds
Peer delay      : 0.000175634 seconds
Peer dispersion : 0.000000681 seconds
Response time   : 0.000053050 seconds
Jitter asymmetry: +0.00
NTP tests       : 111 111 1111
Interleaved     : No
Authenticated   : No
TX timestamping : Kernel
RX timestamping : Kernel
Total TX        : 24
Total RX        : 24
Total valid RX  : 24
Total good RX   : 22
`;
  assert.equal(formatNtpData(r), expected);
  assert.equal(formatNtpDataList([r, r]), '\n' + expected + '\n' + expected);
  assert.equal(formatNtpDataList([r], { addressGiven: true }), expected);
  const csv = formatNtpData(r, { csv: true });
  assert.match(
    csv,
    /^203\.0\.113\.15,CB00710F,123,203\.0\.113\.74,CB00714A,Normal,4,Server,1,10,1024,-24,0\.000000060,/,
  );
  assert.match(csv, /,111,111,1111,No,No,Kernel,Kernel,24,24,24,22\n$/);
  // Stratum > 1: no refid text.
  assert.match(formatNtpData({ ...r, stratum: 2, refId: 0xc0000201 }), /Reference ID    : C0000201 \(\)\n/);
});

test('reference IDs of addresses and refid text', () => {
  assert.equal(addressToRefId('192.0.2.1'), 0xc0000201);
  // IPv6: first 32 bits of MD5 of the 16 address bytes; same for equivalent spellings.
  assert.equal(addressToRefId('2001:db8::1'), addressToRefId('2001:0db8:0:0:0:0:0:1'));
  assert.notEqual(addressToRefId('2001:db8::1'), addressToRefId('2001:db8::2'));
  assert.equal(refIdToString(0x4c4f434c), 'LOCL');
  assert.equal(refIdToString(0x7f7f0101), '');
});

test('clients matches the chronyc man page example', () => {
  const out = formatClients([
    {
      address: 'localhost',
      ntpHits: 2,
      ntpDrops: 0,
      ntpInterval: 2,
      ntpIntervalLast: null,
      lastNtpAgo: 133,
      cmdHits: 15,
      cmdDrops: 0,
      cmdInterval: -1,
      lastCmdAgo: 7,
    },
    {
      address: 'foo.example.net',
      ntpHits: 12,
      ntpDrops: 0,
      ntpInterval: 6,
      ntpIntervalLast: null,
      lastNtpAgo: 23,
      cmdHits: 0,
      cmdDrops: 0,
      cmdInterval: null,
      lastCmdAgo: null,
    },
  ]);
  assert.equal(
    out,
    `Hostname                      NTP   Drop Int IntL Last     Cmd   Drop Int  Last
===============================================================================
localhost                       2      0   2   -   133      15      0  -1     7
foo.example.net                12      0   6   -    23       0      0   -     -
`,
  );
});

test('serverstats, activity, status lines, waitsync line', () => {
  const s: ServerStatsReport = {
    ntpPacketsReceived: 1234,
    ntpPacketsDropped: 5,
    cmdPacketsReceived: 6,
    cmdPacketsDropped: 0,
    clientLogSizeActive: 3,
    clientLogMemory: 100,
    ntpAuthPacketsReceived: 0,
    ntpInterleavedPacketsReceived: 7,
    ntpTimestampsHeld: 8,
    ntpTimestampSpan: 9,
    malformedDropped: { short: 2 },
  };
  assert.equal(
    formatServerStats(s),
    'NTP packets received       : 1234\nNTP packets dropped        : 5\nCommand packets received   : 6\n' +
      'Command packets dropped    : 0\nClient log records dropped : 0\nNTS-KE connections accepted: 0\n' +
      'NTS-KE connections dropped : 0\nAuthenticated NTP packets  : 0\nInterleaved NTP packets    : 7\n' +
      'NTP timestamps held        : 8\nNTP timestamp span         : 9\n',
  );
  assert.equal(formatServerStats(s, { csv: true }), '1234,5,6,0,0,0,0,0,7,8,9\n');
  const a = { online: 3, offline: 1, burstOnline: 0, burstOffline: 0, unresolved: 2 };
  assert.equal(
    formatActivity(a),
    '200 OK\n3 sources online\n1 sources offline\n0 sources doing burst (return to online)\n' +
      '0 sources doing burst (return to offline)\n2 sources with unknown address\n',
  );
  assert.equal(formatActivity(a, { csv: true }), '3,1,0,0,2\n');
  assert.equal(formatStatus(200), '200 OK\n');
  assert.equal(formatStatus(501), '501 Not authorised\n');
  assert.equal(formatStatus(506), '506 Cannot talk to daemon\n');
  assert.equal(
    formatWaitsyncTry(1, 0xcb00710f, 0.000006523, 0.129),
    'try: 1, refid: CB00710F, correction: 0.000006523, skew: 0.129\n',
  );
});
