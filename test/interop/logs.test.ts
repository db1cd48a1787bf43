/**
 * Log files against a real chronyd 4.3: chronyd -x and rubidiumd -x, both clients of the same
 * server (a rubidiumd whose clock is 50 ms ahead on purpose), each write `log measurements
 * statistics tracking` into a logdir. Our files must have chronyd's banners exactly and the same
 * columns with the same widths (compared on the latest, synchronised entries).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetnsPair, isRoot, makeTempDir, removeTempDir, unwind, waitFor } from '../support/netns.js';
import { READY_SERVING, READY_STARTING, startRubidiumd } from '../support/rubidiumd.js';
import { startChronyd } from '../support/peers.js';

const skip = isRoot() ? false : 'interop tests need root (network namespaces, veth)';
const NAMES = ['measurements', 'statistics', 'tracking'] as const;

function read(dir: string, name: string): string[] {
  const p = join(dir, `${name}.log`);
  return existsSync(p)
    ? readFileSync(p, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
}
const entries = (lines: string[]) => lines.filter((l) => /^\d{4}-\d\d-\d\d /.test(l));
/** Where each column ends (the layout), per field of a line split on runs of spaces. */
function columnEnds(line: string): number[] {
  const ends: number[] = [];
  for (const m of line.matchAll(/\S+/g)) ends.push(m.index + m[0].length);
  return ends;
}

describe('log files match chronyd 4.3', { skip }, () => {
  it('banners, columns and widths of measurements/statistics/tracking', { timeout: 120_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair = await createNetnsPair({ tag: 'logs', subnet: 9 });
      cleanups.push(() => pair.destroy());
      const server = await startRubidiumd({
        ns: pair.server,
        tag: 'rb-logs-server',
        name: 'rubidiumd-server',
        confName: 'c.conf',
        lines: ['local stratum 1', 'allow all', 'cmdport 0', 'bindcmdaddress /'],
        flags: ['--inject-error', '0.05,0'],
        ready: READY_SERVING,
      });
      cleanups.push(() => server.stop());

      // chronyd creates its logdir for its own user (_chrony) after dropping root: let it in.
      const chronyTop = makeTempDir('rb-logs-chrony');
      cleanups.push(async () => removeTempDir(chronyTop));
      chmodSync(chronyTop, 0o755);
      const chronyLogs = join(chronyTop, 'log');
      const chronyd = await startChronyd({
        ns: pair.client,
        servers: [{ address: pair.serverAddr, options: 'iburst minpoll -2 maxpoll -2' }],
        cmdPort: 11324,
        extraConfig: [`logdir ${chronyLogs}`, 'log measurements statistics tracking'],
      });
      cleanups.push(() => chronyd.stop());

      const client = await startRubidiumd({
        ns: pair.client,
        tag: 'rb-logs-rubidium',
        name: 'rubidiumd-client',
        confName: 'c.conf',
        // Polls at 1 s: our measurements are collected once a second, so each sample gets its line.
        lines: [
          `server ${pair.serverAddr} iburst minpoll 0 maxpoll 0`,
          'port 0',
          'cmdport 0',
          'bindcmdaddress /',
          'logdir $DIR/log',
          'log measurements statistics tracking',
        ],
        ready: READY_STARTING,
      });
      cleanups.push(() => client.stop());
      const rb = client.proc;
      const rdir = client.dir;

      await waitFor(
        async () =>
          NAMES.every(
            (n) => entries(read(chronyLogs, n)).length >= 2 && entries(read(join(rdir, 'log'), n)).length >= 2,
          ) || undefined,
        { timeoutMs: 60_000, intervalMs: 500, what: 'both daemons to write two entries in every log' },
      ).catch((e: Error) => {
        const counts = NAMES.map(
          (n) =>
            `${n}: chronyd ${entries(read(chronyLogs, n)).length}, ours ${entries(read(join(rdir, 'log'), n)).length}`,
        );
        throw new Error(
          `${e.message}\n${counts.join('\n')}\nrubidiumd:\n${rb.tail()}\nchronyd:\n${chronyd.proc.tail()}`,
        );
      });
      for (const n of NAMES) {
        const theirs = read(chronyLogs, n);
        const ours = read(join(rdir, 'log'), n);
        assert.deepEqual(ours.slice(0, 3), theirs.slice(0, 3), `${n}.log banner`);
        // The latest entries: both synchronised (chronyd's first tracking line is from before).
        const t = entries(theirs).at(-1)!;
        const o = entries(ours).at(-1)!;
        assert.equal(
          o.split(/\s+/).length,
          t.split(/\s+/).length,
          `${n}.log column count\nchronyd: ${t}\nours:    ${o}`,
        );
        // The address column is padded to 15; both use the same server address, so every column ends alike.
        assert.deepEqual(columnEnds(o), columnEnds(t), `${n}.log column layout\nchronyd: ${t}\nours:    ${o}`);
      }
    } finally {
      await unwind(cleanups);
    }
  });
});
