/**
 * AF_UNIX datagram sockets (Node core has none) on top of the native addon: sd_notify and
 * chronyc's Unix command socket use them. A path starting with '@' is a Linux abstract name.
 */
import * as fs from 'node:fs';
import { native, nativeLoadError } from './native.js';

export interface UnixDgramSocket {
  /** Bound path ('' if unbound); '@name' means Linux abstract namespace. */
  readonly path: string;
  /** Sends one datagram to a socket path ('@name' = abstract). Returns false if the kernel refused it (errno to onError). */
  send(data: Uint8Array, toPath: string): boolean;
  close(): void;
}

export interface UnixDgramOptions {
  /** Path to bind (an existing socket file at that path is replaced); omit for an unbound sending socket. */
  path?: string;
  /** chmod of the bound socket file, e.g. 0o660. */
  mode?: number;
  /** Each received datagram with the sender's bound path ('' if the sender is unbound). */
  onDatagram?: (data: Buffer, fromPath: string) => void;
  onError?: (err: Error) => void;
}

/** sizeof(sockaddr_un.sun_path) on Linux; a path also needs its terminating NUL. */
const SUN_PATH_SIZE = 108;

/** The addon's Unix-socket exports (typed here so a stale addon without them is detected). */
interface NativeUnixHandle {
  readonly tsMode: string;
}
interface NativeUnixAddon {
  unixOpen(path: string | null, onEvent: (kind: 'rx' | 'error', ...args: unknown[]) => void): NativeUnixHandle;
  unixSend(handle: NativeUnixHandle, data: Uint8Array, toPath: string): number;
  unixClose(handle: NativeUnixHandle): void;
  unixSetRef(handle: NativeUnixHandle, ref: boolean): void;
}

function addon(): NativeUnixAddon | null {
  const a = native as unknown as Partial<NativeUnixAddon> | null;
  return a && typeof a.unixOpen === 'function' && typeof a.unixSend === 'function' ? (a as NativeUnixAddon) : null;
}

/** Why Unix datagram sockets are unavailable (addon not built), or null if they work. */
export function unixDgramUnavailableReason(): string | null {
  if (!native) return `Unix datagram sockets unavailable: ${nativeLoadError ?? 'native addon not loaded'}`;
  if (!addon()) {
    return 'Unix datagram sockets unavailable: the native addon is a stale build without unixOpen (run `node scripts/build-native.mjs`)';
  }
  return null;
}

/** Checks a socket address before the kernel does, so the error names the path and the limit. */
function checkAddress(p: string, what: string): void {
  const bytes = Buffer.byteLength(p);
  if (p.includes('\0')) throw new TypeError(`${what} '${p.replace(/\0/g, '\\0')}' contains a NUL character`);
  if (p === '@') throw new TypeError(`${what}: abstract socket name '@' is empty`);
  const max = p.startsWith('@') ? SUN_PATH_SIZE : SUN_PATH_SIZE - 1;
  if (bytes > max) {
    throw new RangeError(`${what} is too long for a Unix socket address (${bytes} bytes, at most ${max}): ${p}`);
  }
}

/** Removes a stale socket file left at `p` (never a regular file or anything else). */
function removeStaleSocket(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return; // nothing there (or the directory is missing: bind will say so)
  }
  if (!st.isSocket()) throw new Error(`cannot bind Unix socket ${p}: a file that is not a socket is in the way`);
  fs.unlinkSync(p);
}

/** Throws a clear Error if the addon is missing or socket()/bind() fails. */
export function openUnixDgramSocket(opts: UnixDgramOptions): UnixDgramSocket {
  const a = addon();
  if (!a) throw new Error(unixDgramUnavailableReason() ?? 'Unix datagram sockets unavailable');
  const bindPath = opts.path ?? '';
  const abstract = bindPath.startsWith('@');
  if (bindPath) {
    checkAddress(bindPath, 'Unix socket path');
    if (!abstract) removeStaleSocket(bindPath);
  }
  const onError = opts.onError ?? (() => undefined);
  let closed = false;
  const handle = a.unixOpen(bindPath || null, (kind, ...args) => {
    if (closed) return;
    if (kind === 'rx') opts.onDatagram?.(args[0] as Buffer, args[1] as string);
    else onError(new Error(`Unix socket ${bindPath || '(unbound)'}: ${String(args[0])}`));
  });
  // A socket nobody can address (unbound) only sends: it must not keep the process alive.
  if (!bindPath) a.unixSetRef(handle, false);
  if (bindPath && !abstract && opts.mode !== undefined) {
    try {
      fs.chmodSync(bindPath, opts.mode);
    } catch (e) {
      a.unixClose(handle);
      fs.rmSync(bindPath, { force: true });
      throw new Error(`cannot chmod Unix socket ${bindPath}: ${(e as Error).message}`);
    }
  }
  // Identity of the socket file we created, so close() never removes someone else's.
  let ino: number | null = null;
  if (bindPath && !abstract) {
    try {
      ino = fs.lstatSync(bindPath).ino;
    } catch {
      ino = null;
    }
  }
  return {
    path: bindPath,
    send(data: Uint8Array, toPath: string): boolean {
      if (closed) throw new Error('Unix socket is closed');
      checkAddress(toPath, 'destination Unix socket path');
      try {
        a.unixSend(handle, data, toPath);
        return true;
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        // Argument errors are the caller's bug; kernel refusals (ENOENT, ECONNREFUSED, EAGAIN...) go to onError.
        if (typeof err.errno !== 'number') throw e;
        onError(err);
        return false;
      }
    },
    close(): void {
      if (closed) return;
      closed = true;
      a.unixClose(handle);
      if (ino !== null) {
        try {
          if (fs.lstatSync(bindPath).ino === ino) fs.unlinkSync(bindPath);
        } catch {
          // already removed
        }
      }
    },
  };
}
