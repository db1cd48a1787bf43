/**
 * A throwaway PKI made with the `openssl` CLI for NTS-KE tests: a CA, a server certificate for
 * 127.0.0.1/::1/localhost (plus any names given), an expired one with the same key and names, and
 * an unrelated second CA. EC P-256 keys (fast to make, accepted by GnuTLS in chrony).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** Same key as serverKey, valid only in January 2020. */
  expiredCert: string;
  /** A CA that signed none of the above. */
  otherCaCert: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '30',
      '-subj',
      `/CN=Rubidium test ${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert, key };
}

/** Creates the PKI in `dir` (which must exist); `names` are extra DNS names or IP addresses for the server. */
export function makeTestPki(dir: string, names: string[] = []): TestPki {
  const ca = makeCa(dir, 'ca');
  const other = makeCa(dir, 'other-ca');
  const serverKey = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      serverKey,
      '-out',
      csr,
      '-subj',
      '/CN=localhost',
    ],
    dir,
  );
  const san = ['IP:127.0.0.1', 'IP:::1', 'DNS:localhost', ...names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`))].join(
    ',',
  );
  writeFileSync(
    join(dir, 'leaf.ext'),
    `[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
  );
  // `openssl ca` is the only 3.0 tool that sets arbitrary (past) validity dates.
  mkdirSync(join(dir, 'newcerts'));
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca=CA_default',
      '[CA_default]',
      `database=${join(dir, 'index.txt')}`,
      `new_certs_dir=${join(dir, 'newcerts')}`,
      `serial=${join(dir, 'serial')}`,
      'default_md=sha256',
      'policy=policy_any',
      'unique_subject=no',
      'default_days=30',
      '[policy_any]',
      'commonName=supplied',
      '',
    ].join('\n'),
  );
  const sign = (out: string, dates: string[]): void =>
    openssl(
      [
        'ca',
        '-batch',
        '-notext',
        '-config',
        'ca.cnf',
        '-cert',
        ca.cert,
        '-keyfile',
        ca.key,
        '-in',
        csr,
        '-out',
        out,
        '-extfile',
        'leaf.ext',
        '-extensions',
        'leaf',
        ...dates,
      ],
      dir,
    );
  const serverCert = join(dir, 'server.pem');
  const expiredCert = join(dir, 'expired.pem');
  sign(serverCert, ['-days', '30']);
  sign(expiredCert, ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z']);
  return { dir, caCert: ca.cert, caKey: ca.key, serverCert, serverKey, expiredCert, otherCaCert: other.cert };
}
