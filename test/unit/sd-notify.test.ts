import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openNotifier, watchdogIntervalMs } from '../../src/daemon/sd-notify.js';
import { openUnixDgramSocket, unixDgramUnavailableReason } from '../../src/io/unix-dgram.js';
import { makeTempDir, removeTempDir, sleep, waitFor } from '../support/netns.js';

const skip = unixDgramUnavailableReason() ?? false;

test('sd-notify: WATCHDOG_USEC gives half the timeout, honouring WATCHDOG_PID', () => {
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), 15000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 15000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '-5' }, 42), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '1e6' }, 42), null);
  assert.equal(watchdogIntervalMs({}, 42), null);
});

test('sd-notify: without NOTIFY_SOCKET nothing is sent and nothing fails', () => {
  const warnings: string[] = [];
  const n = openNotifier({}, (m) => warnings.push(m));
  n.ready('x');
  n.stopping();
  n.close();
  assert.deepEqual(warnings, []);
});

test('sd-notify: a relative NOTIFY_SOCKET is refused with a warning', () => {
  const warnings: string[] = [];
  openNotifier({ NOTIFY_SOCKET: 'run/notify' }, (m) => warnings.push(m)).ready('x');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /NOTIFY_SOCKET=run\/notify is neither an absolute path nor an abstract name/);
});

test(
  'sd-notify: READY, STATUS, WATCHDOG and STOPPING reach the socket, to paths and abstract names',
  { skip },
  async () => {
    const dir = makeTempDir('sdnotify');
    const got: string[] = [];
    const fsSock = openUnixDgramSocket({ path: join(dir, 'notify'), onDatagram: (d) => got.push(d.toString()) });
    const abs = `@rubidium-notify-${process.pid}`;
    const gotAbs: string[] = [];
    const absSock = openUnixDgramSocket({ path: abs, onDatagram: (d) => gotAbs.push(d.toString()) });
    const warnings: string[] = [];
    try {
      const n = openNotifier({ NOTIFY_SOCKET: fsSock.path, WATCHDOG_USEC: '100000' }, (m) => warnings.push(m));
      n.ready('Serving\nwith 2 sources');
      await waitFor(() => got.length > 0, { timeoutMs: 2000, what: 'READY=1' });
      assert.equal(got[0], `READY=1\nSTATUS=Serving with 2 sources\nMAINPID=${process.pid}\n`);
      await sleep(400);
      const pings = got.filter((g) => g === 'WATCHDOG=1\n').length;
      assert.ok(pings >= 4 && pings <= 10, `${pings} WATCHDOG=1 in 400 ms at a 50 ms interval`);
      n.status('Synchronised');
      n.stopping();
      await waitFor(() => got.includes('STOPPING=1\nSTATUS=Shutting down\n'), { timeoutMs: 2000, what: 'STOPPING=1' });
      assert.ok(got.includes('STATUS=Synchronised\n'));
      const count = got.length;
      await sleep(150);
      assert.equal(got.length, count, 'the watchdog stops with STOPPING=1');
      n.close();
      n.close();
      n.ready('after close');
      const a = openNotifier({ NOTIFY_SOCKET: abs }, (m) => warnings.push(m));
      a.ready('abstract');
      await waitFor(() => gotAbs.length > 0, { timeoutMs: 2000, what: 'READY=1 on abstract socket' });
      assert.match(gotAbs[0]!, /^READY=1\nSTATUS=abstract\n/);
      a.close();
      // A NOTIFY_SOCKET nobody listens on: a warning, no exception.
      const gone = openNotifier({ NOTIFY_SOCKET: join(dir, 'missing') }, (m) => warnings.push(m));
      gone.ready('x');
      gone.close();
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /sd_notify: .*missing.*ENOENT/);
    } finally {
      fsSock.close();
      absSock.close();
      removeTempDir(dir);
    }
  },
);
