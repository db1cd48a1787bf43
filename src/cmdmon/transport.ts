/**
 * I/O for the cmdmon service: the Unix datagram socket chronyc talks to (`chronyc -h PATH`), and
 * the hook that lets the shared UDP command port hand chrony packets to the service.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { UnixDgramSocket } from '../io/unix-dgram.js';
import type { CmdmonService } from './service.js';
import { isCmdmonPacket } from './request.js';

export interface CmdmonUnixSocket {
  readonly path: string;
  close(): void;
}

/**
 * Binds the chrony-compatible Unix datagram socket. Its directory is created 0750 if missing
 * (chronyc binds its own reply socket, chronyc.PID.sock, in the same directory, so only users
 * who may write there can talk to it; chronyd relies on the same). Throws a clear Error when
 * Unix datagram sockets are unavailable (native addon not built) or binding fails.
 */
export async function openCmdmonUnixSocket(
  socketPath: string,
  service: CmdmonService,
  onError: (err: Error) => void,
): Promise<CmdmonUnixSocket> {
  const io = await import('../io/unix-dgram.js');
  const why = io.unixDgramUnavailableReason();
  if (why) throw new Error(`Unix datagram sockets unavailable: ${why}`);
  const dir = path.dirname(socketPath);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  let sock: UnixDgramSocket | undefined = undefined;
  sock = io.openUnixDgramSocket({
    path: socketPath,
    mode: 0o660,
    onError,
    onDatagram: (data, fromPath) => {
      if (fromPath === '') return; // an unbound sender cannot receive the reply
      service
        .handle(data, { transport: 'unix' })
        .then((out) => {
          if (out && sock) sock.send(out, fromPath);
        })
        .catch((e: unknown) => onError(e as Error));
    },
  });
  const s = sock;
  return {
    path: socketPath,
    close() {
      s.close();
      try {
        if (fs.lstatSync(socketPath).isSocket()) fs.unlinkSync(socketPath);
      } catch {
        /* already gone */
      }
    },
  };
}

/**
 * A UDP datagram hook for the control server: takes chrony packets (returns true), leaves JSON
 * requests to the JSON handler (returns false).
 */
export function cmdmonUdpHook(
  service: CmdmonService,
  onError: (err: Error) => void,
): (msg: Buffer, address: string, reply: (out: Uint8Array) => void) => boolean {
  return (msg, address, reply) => {
    if (!isCmdmonPacket(msg)) return false;
    service
      .handle(msg, { transport: 'udp', address })
      .then((out) => {
        if (out) reply(out);
      })
      .catch((e: unknown) => onError(e as Error));
    return true;
  };
}
