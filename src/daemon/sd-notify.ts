/**
 * systemd's sd_notify protocol (Type=notify): one datagram of "KEY=VALUE\n" lines to the
 * AF_UNIX socket named by $NOTIFY_SOCKET ('@name' = abstract). READY=1 once the daemon serves,
 * STOPPING=1 at shutdown, WATCHDOG=1 every half of $WATCHDOG_USEC. Without $NOTIFY_SOCKET all of
 * this does nothing, so the daemon behaves the same outside systemd.
 */
import { openUnixDgramSocket, unixDgramUnavailableReason, type UnixDgramSocket } from '../io/unix-dgram.js';

export interface Notifier {
  /** Sends READY=1 (+ STATUS=status). */
  ready(status: string): void;
  status(status: string): void;
  stopping(): void;
  close(): void;
}

const noop: Notifier = { ready() {}, status() {}, stopping() {}, close() {} };

/** Parses $WATCHDOG_USEC (honouring $WATCHDOG_PID like sd_watchdog_enabled); null if off. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usec = env.WATCHDOG_USEC;
  if (!usec || !/^\d+$/.test(usec)) return null;
  if (env.WATCHDOG_PID && env.WATCHDOG_PID !== String(pid)) return null;
  const us = Number(usec);
  if (!(us > 0)) return null;
  // Half the timeout, as sd_watchdog_enabled(3) advises; at least 1 ms.
  return Math.max(1, Math.floor(us / 2000));
}

/**
 * Opens the notification channel described by `env` (normally process.env). `warn` hears about
 * a socket that cannot be used; the daemon keeps running either way.
 */
export function openNotifier(env: NodeJS.ProcessEnv, warn: (msg: string) => void): Notifier {
  const target = env.NOTIFY_SOCKET;
  if (!target) return noop;
  if (!target.startsWith('/') && !target.startsWith('@')) {
    warn(`NOTIFY_SOCKET=${target} is neither an absolute path nor an abstract name; not notifying systemd`);
    return noop;
  }
  const why = unixDgramUnavailableReason();
  if (why) {
    warn(`cannot notify systemd: ${why}`);
    return noop;
  }
  let sock: UnixDgramSocket;
  try {
    sock = openUnixDgramSocket({ onError: (e) => warn(`sd_notify: ${e.message}`) });
  } catch (e) {
    warn(`cannot notify systemd: ${(e as Error).message}`);
    return noop;
  }
  const send = (text: string) => void sock.send(Buffer.from(text), target);
  let watchdog: NodeJS.Timeout | null = null;
  const wdMs = watchdogIntervalMs(env, process.pid);
  let closed = false;
  const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');
  return {
    ready(status: string) {
      if (closed) return;
      send(`READY=1\nSTATUS=${oneLine(status)}\nMAINPID=${process.pid}\n`);
      if (wdMs !== null && watchdog === null) {
        watchdog = setInterval(() => send('WATCHDOG=1\n'), wdMs);
        watchdog.unref();
      }
    },
    status(status: string) {
      if (!closed) send(`STATUS=${oneLine(status)}\n`);
    },
    stopping() {
      if (closed) return;
      if (watchdog) clearInterval(watchdog);
      watchdog = null;
      send('STOPPING=1\nSTATUS=Shutting down\n');
    },
    close() {
      if (closed) return;
      closed = true;
      if (watchdog) clearInterval(watchdog);
      sock.close();
    },
  };
}
