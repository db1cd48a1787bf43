/**
 * Our reference ID as each source sees us (orphan mode compares it with the source's): the
 * local address the kernel picks to reach the source, found with a connected UDP socket (no
 * packet is sent).
 */
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Engine, SourceConfig } from '../engine/engine.js';
import { refIdFromAddress } from '../ntp/refid.js';

export function localAddressTowards(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    sock.once('error', (e) => {
      sock.close();
      reject(e);
    });
    sock.connect(port, address, () => {
      try {
        resolve(sock.address().address);
      } catch (e) {
        reject(e as Error);
      } finally {
        sock.close();
      }
    });
  });
}

/** Sets each source's local refid in the engine; a source whose route is unknown is skipped. */
export async function learnLocalRefIds(
  engine: Engine,
  sources: readonly SourceConfig[],
  warn: (msg: string) => void,
): Promise<number> {
  let n = 0;
  for (const s of sources) {
    try {
      const local = await localAddressTowards(s.address.address, s.address.port);
      engine.setLocalRefId(s.id, refIdFromAddress(local));
      n++;
    } catch (e) {
      warn(`orphan mode: no local address towards ${s.address.address} (${(e as Error).message})`);
    }
  }
  return n;
}
