import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { keysToChronyText, parseKeysText } from '../../src/config/keys-file.js';

test('chrony key file: default MD5, ASCII:/HEX:, CMAC lengths', () => {
  const keys = parseKeysText(
    '# comment\n1 secretpw\n2 SHA1 HEX:0102ABCD\n3 AES128 HEX:000102030405060708090a0b0c0d0e0f\n4 SHA256 ASCII:pass word\n'.replace(
      'pass word',
      'password',
    ),
    'k',
    'chrony',
  );
  assert.deepEqual(
    keys.map((k) => [k.id, k.algorithm, k.length]),
    [
      [1, 'MD5', 8],
      [2, 'SHA1', 4],
      [3, 'AES128', 16],
      [4, 'SHA256', 8],
    ],
  );
  assert.deepEqual([...keys[1]!.material()], [1, 2, 0xab, 0xcd]);
  assert.throws(() => parseKeysText('5 AES128 HEX:0011', 'k', 'chrony'), /k:1: invalid length of AES128 key 5/);
  assert.throws(() => parseKeysText('6 md5 x', 'k', 'chrony'), /k:1: invalid type 'md5'/);
  assert.throws(() => parseKeysText('\n7 HEX:0g', 'k', 'chrony'), /k:2: could not decode key 7/);
});

test('ntp keys file: case-insensitive types, <= 20 chars ASCII else hex, comments', () => {
  const keys = parseKeysText(
    '1 M abc # trailing comment\n2 sha1 0123456789abcdef0123456789abcdef01234567\n3 AES short\n',
    'n',
    'ntp',
  );
  assert.deepEqual(
    keys.map((k) => [k.id, k.algorithm, k.length]),
    [
      [1, 'MD5', 3],
      [2, 'SHA1', 20],
      [3, 'AES128', 5],
    ],
  );
  assert.throws(() => parseKeysText('70000 md5 x', 'n', 'ntp'), /n:1: invalid key number/);
  assert.throws(() => parseKeysText('1 blake9 x', 'n', 'ntp'), /n:1: unknown type 'blake9'/);
  assert.throws(() => parseKeysText('1 md5 this-is-longer-than-twenty', 'n', 'ntp'), /not hex/);
  assert.throws(() => parseKeysText('1 md5 a\n1 md5 b', 'n', 'ntp'), /n:2: duplicate key 1 \(first defined at n:1\)/);
});

test('key material never appears in errors, inspect or JSON', () => {
  const secret = 'Zq7SecretQ';
  const [k] = parseKeysText(`9 sha256 ${secret}`, 'n', 'ntp');
  assert.ok(!inspect(k).includes(secret));
  assert.ok(!JSON.stringify(k).includes(secret));
  assert.ok(!String(k).includes(secret));
  try {
    parseKeysText(`9 aes-256 ${secret}\n9 md5 ${secret}`, 'n', 'ntp');
    assert.fail('expected duplicate error');
  } catch (e) {
    assert.ok(!(e as Error).message.includes(secret));
  }
});

test('ntp keys convert to chrony format that parses back to the same material', () => {
  const keys = parseKeysText(
    '1 md5 abc\n2 aes 000102030405060708090a0b0c0d0e0f\n3 aes short\n4 ripemd160 x',
    'n',
    'ntp',
  );
  const { text, skipped } = keysToChronyText(keys);
  const back = parseKeysText(text, 'c', 'chrony');
  assert.deepEqual(
    back.map((k) => [k.id, k.algorithm, Buffer.from(k.material()).toString('hex')]),
    [
      [1, 'MD5', '616263'],
      [2, 'AES128', '000102030405060708090a0b0c0d0e0f'],
    ],
  );
  assert.equal(skipped.length, 2);
  assert.match(skipped.join('\n'), /key 3: AES128 needs a 128-bit key/);
  assert.match(skipped.join('\n'), /key 4: type RIPEMD160/);
});
