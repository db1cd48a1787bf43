/**
 * The service packaging: the systemd unit passes `systemd-analyze verify` (or, without it, has
 * the keys that matter), the Dockerfile copies only files that exist and runs rubidiumd, the
 * Kubernetes manifest parses and has what a clock daemon needs. Nothing here pulls an image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../src/config/chrony-conf.js';
import { makeTempDir, removeTempDir } from '../support/netns.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const unitPath = join(root, 'packaging', 'systemd', 'rubidiumd.service');

/** [Section] Key=Value lines of a unit file (a key may repeat). */
function parseUnit(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv && section, `bad unit line: ${line}`);
    const k = `${section}.${kv[1]}`;
    keys.set(k, [...(keys.get(k) ?? []), kv[2]!]);
  }
  return keys;
}

test('packaging: the systemd unit is Type=notify with the capabilities and hardening it needs', () => {
  const u = parseUnit(readFileSync(unitPath, 'utf8'));
  const one = (k: string) => u.get(k)?.at(-1);
  assert.equal(one('Service.Type'), 'notify');
  const exec = one('Service.ExecStart')!.split(/\s+/);
  assert.equal(exec[0], '/usr/bin/rubidiumd');
  assert.ok(exec.includes('-n') && !exec.includes('-x'), 'foreground, disciplining the clock');
  assert.equal(exec[exec.indexOf('-f') + 1], '/etc/rubidium/chrony.conf');
  assert.equal(exec[exec.indexOf('-u') + 1], 'rubidium');
  const caps = one('Service.CapabilityBoundingSet')!.split(/\s+/);
  for (const c of ['CAP_SYS_TIME', 'CAP_NET_BIND_SERVICE', 'CAP_SETUID', 'CAP_SETGID']) assert.ok(caps.includes(c), c);
  assert.equal(one('Service.NoNewPrivileges'), 'yes');
  assert.equal(one('Service.ProtectSystem'), 'strict');
  assert.equal(u.has('Service.ProtectClock'), false, 'ProtectClock would forbid clock_adjtime');
  assert.equal(u.has('Service.MemoryDenyWriteExecute'), false, "Node's JIT needs W+X memory");
  // The paths the daemon writes are writable under ProtectSystem=strict, and match the config.
  const rw = one('Service.ReadWritePaths')!.split(/\s+/);
  const conf = parseConfigText(readFileSync(join(root, 'packaging', 'config', 'chrony.conf'), 'utf8'), 'chrony.conf');
  for (const f of [conf.driftfile!, conf.pidfile!, `${conf.logdir!}/x`]) {
    assert.ok(
      rw.some((d) => f.startsWith(`${d}/`)),
      `${f} not under ReadWritePaths`,
    );
  }
  assert.equal(one('Service.PIDFile'), conf.pidfile);
  assert.equal(conf.user, 'rubidium');
});

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
test(
  'packaging: systemd-analyze verify accepts the unit (and rejects a broken one)',
  { skip: analyze.status === 0 ? false : 'systemd-analyze not installed' },
  () => {
    const dir = makeTempDir('unit');
    try {
      // verify checks that ExecStart exists: point it at this tree's launcher.
      const text = readFileSync(unitPath, 'utf8').replaceAll('/usr/bin/rubidiumd', join(root, 'bin', 'rubidiumd'));
      writeFileSync(join(dir, 'rubidiumd.service'), text);
      const ok = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'rubidiumd.service')], {
        encoding: 'utf8',
      });
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stderr.trim(), '');
      writeFileSync(join(dir, 'rubidiumd.service'), text.replace('Type=notify', 'Type=notifyy'));
      const bad = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'rubidiumd.service')], {
        encoding: 'utf8',
      });
      assert.match(bad.stderr, /Failed to parse service type/);
    } finally {
      removeTempDir(dir);
    }
  },
);

test('packaging: the Dockerfile copies files that exist and runs rubidiumd in the foreground', () => {
  const text = readFileSync(join(root, 'packaging', 'docker', 'Dockerfile'), 'utf8');
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const copies = lines.filter((l) => /^COPY\s/.test(l) && !/--from=/.test(l));
  assert.ok(copies.length >= 5);
  for (const l of copies) {
    const args = l.trim().split(/\s+/).slice(1);
    for (const src of args.slice(0, -1)) assert.ok(existsSync(join(root, src)), `COPY source ${src} missing`);
  }
  assert.ok(lines.some((l) => /^EXPOSE\s+123\/udp$/.test(l.trim())));
  const entry = lines.find((l) => l.startsWith('ENTRYPOINT'))!;
  assert.deepEqual(JSON.parse(entry.slice('ENTRYPOINT'.length)), ['rubidiumd', '-n', '-d']);
  const cmd = JSON.parse(lines.find((l) => l.startsWith('CMD'))!.slice(3)) as string[];
  assert.equal(cmd[cmd.indexOf('-f') + 1], '/etc/rubidium/chrony.conf');
  assert.ok(
    lines.some((l) => /^RUN npm ci$/.test(l.trim())),
    'npm ci (builds the addon)',
  );
  assert.ok(/^FROM node:20-bookworm/m.test(text));
  // The npm scripts the build relies on exist.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.install!, /build-native\.mjs/);
});

const py = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
test(
  'packaging: the Kubernetes DaemonSet parses and runs on the host network with CAP_SYS_TIME',
  { skip: py.status === 0 ? false : 'python3 with PyYAML not available' },
  () => {
    const file = join(root, 'packaging', 'kubernetes', 'daemonset.yaml');
    const r = spawnSync(
      'python3',
      ['-c', 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const docs = JSON.parse(r.stdout) as Obj[];
    const cm = docs.find((d) => d.kind === 'ConfigMap')!;
    const ds = docs.find((d) => d.kind === 'DaemonSet')!;
    assert.equal(ds.apiVersion, 'apps/v1');
    const spec = ds.spec.template.spec as Obj;
    assert.equal(spec.hostNetwork, true);
    assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels);
    const c = (spec.containers as Obj[]).find((x) => x.name === 'rubidiumd')!;
    assert.ok((c.securityContext.capabilities.add as string[]).includes('SYS_TIME'));
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.deepEqual(c.livenessProbe.exec.command.slice(-1), ['tracking']);
    assert.equal(c.livenessProbe.exec.command[0], 'rubidiumc');
    // The config comes from the ConfigMap, parses, and the probe's socket is the one it opens.
    const vol = (spec.volumes as Obj[]).find((v) => v.configMap)!;
    assert.equal(vol.configMap.name, cm.metadata.name);
    const mount = (c.volumeMounts as Obj[]).find((m) => m.name === vol.name)!;
    assert.equal(`${mount.mountPath}/chrony.conf`, c.args[c.args.indexOf('-f') + 1]);
    const conf = parseConfigText(cm.data['chrony.conf'] as string, 'configmap');
    assert.equal(conf.cmdSocket, c.livenessProbe.exec.command[c.livenessProbe.exec.command.indexOf('-h') + 1]);
    assert.equal(conf.user, 'rubidium');
  },
);
