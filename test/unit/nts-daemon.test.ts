import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatClientDump, NtsDumpError, parseClientDump, type ClientDump } from '../../src/daemon/nts-dump.js';
import { keRetryDelay, trustedCertFiles } from '../../src/daemon/nts-setup.js';
import { defaultNtsConfig } from '../../src/config/nts-config.js';

const DUMP: ClientDump = {
  keHost: 'nts.example.net',
  kePort: 4460,
  result: {
    server: '192.0.2.7',
    port: 123,
    aead: 15,
    c2s: new Uint8Array(32).fill(1),
    s2c: new Uint8Array(32).fill(2),
    cookies: [new Uint8Array(104).fill(3), new Uint8Array(104).fill(4)],
  },
};

test('client cookie file round trip', () => {
  const text = formatClientDump(DUMP);
  assert.match(text, /^RUBIDIUM-NTS-CLIENT 1\nke nts\.example\.net 4460\nntp 192\.0\.2\.7 123\naead 15\n/);
  assert.deepEqual(parseClientDump(text, 'f.nts'), DUMP);
});

test('bad cookie files are errors naming file:line, never crashes', () => {
  const good = formatClientDump(DUMP);
  const bad = (text: string, re: RegExp) =>
    assert.throws(
      () => parseClientDump(text, 'x.nts'),
      (e: unknown) => e instanceof NtsDumpError && re.test(e.message),
      text,
    );
  bad('', /^x\.nts:1: not a Rubidium NTS cookie file/);
  bad(good.replace('aead 15', 'aead 16'), /^x\.nts:4: unsupported AEAD '16'/);
  bad(good.replace('ntp 192.0.2.7 123', 'ntp 192.0.2.7 0'), /^x\.nts:3: invalid port '0'/);
  bad(good.replace(/c2s [0-9a-f]+/, 'c2s zz'), /^x\.nts:5: invalid c2s key/);
  bad(good.replace(/c2s [0-9a-f]+/, 'c2s 0101'), /^x\.nts: key length does not match AEAD 15/);
  bad(good.replace(/cookie [0-9a-f]+\n/g, ''), /^x\.nts: no cookies/);
  bad(good + 'cookie 00\n'.repeat(7), /^x\.nts:15: more than 8 cookies/);
  bad(good + 'bogus 1\n', /^x\.nts:9: unknown line 'bogus'/);
  bad(good.replace(/^s2c .*\n/m, ''), /^x\.nts: incomplete/);
  bad('x'.repeat(20000), /too large/);
  // Truncated at every byte: an error or a valid prefix, never anything else.
  for (let n = 0; n < good.length; n++) {
    try {
      parseClientDump(good.slice(0, n), 't.nts');
    } catch (e) {
      assert.ok(e instanceof NtsDumpError, String(e));
    }
  }
});

test("NTS-KE back-off follows chrony's 2^(factor + attempts - 1) s, capped at 2^19", () => {
  assert.equal(keRetryDelay(1, 'connect'), 16);
  assert.equal(keRetryDelay(2, 'timeout'), 32);
  assert.equal(keRetryDelay(1, 'certificate'), 1024);
  assert.equal(keRetryDelay(3, 'tls'), 4096);
  assert.equal(keRetryDelay(100, 'connect'), 2 ** 19);
  assert.equal(keRetryDelay(0, 'connect'), 8);
});

test('trusted certificate sets: files, and every regular file of a directory', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rb-nts-certs-${process.pid}-`));
  try {
    fs.mkdirSync(path.join(dir, 'set1'));
    for (const n of ['b.pem', 'a.pem', '.hidden']) fs.writeFileSync(path.join(dir, 'set1', n), 'x');
    fs.writeFileSync(path.join(dir, 'zero.pem'), 'x');
    const c = defaultNtsConfig();
    c.ntstrustedcerts.push({ set: 0, path: path.join(dir, 'zero.pem') }, { set: 1, path: path.join(dir, 'set1') });
    assert.deepEqual(trustedCertFiles(c, 0), [path.join(dir, 'zero.pem')]);
    assert.deepEqual(trustedCertFiles(c, 1), [path.join(dir, 'set1', 'a.pem'), path.join(dir, 'set1', 'b.pem')]);
    assert.deepEqual(trustedCertFiles(c, 2), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
