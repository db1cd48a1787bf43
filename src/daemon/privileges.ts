/**
 * Running as an unprivileged user (chronyd's -u / `user`): after every privileged socket is bound,
 * root is dropped. When the daemon disciplines the system clock it keeps CAP_SYS_TIME (as chronyd
 * does, through the addon's prctl(PR_SET_KEEPCAPS) + capset); with -x it keeps nothing.
 *
 * Files written after the drop (drift file, logs, pidfile removal) need directories the user can
 * write: prepareStateDirs creates the missing ones owned by the user before the drop, as chronyd
 * creates its logdir and socket directory. Existing directories are left alone (the admin's
 * choice, e.g. /var/lib/rubidium owned by the service user).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../io/native.js';

export const CAP_SYS_TIME = 25;

export interface UserIds {
  name: string;
  uid: number;
  gid: number;
}

/** Looks a user up in /etc/passwd (by name or numeric uid). */
export function lookupUser(name: string, passwd = '/etc/passwd'): UserIds {
  const text = fs.readFileSync(passwd, 'utf8');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4) continue;
    if (f[0] === name || (/^\d+$/.test(name) && f[2] === name)) {
      const uid = Number(f[2]);
      const gid = Number(f[3]);
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { name: f[0]!, uid, gid };
    }
  }
  throw new Error(`no such user '${name}' in ${passwd}`);
}

/** Creates each missing directory (and missing parents) owned by the user; returns those created. */
export function prepareStateDirs(dirs: readonly string[], ids: UserIds): string[] {
  const created: string[] = [];
  for (const dir of new Set(dirs.map((d) => path.resolve(d)))) {
    const missing: string[] = [];
    for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
    for (const d of missing) {
      fs.mkdirSync(d, { mode: 0o750 });
      fs.chownSync(d, ids.uid, ids.gid);
      created.push(d);
    }
  }
  return created;
}

/** The directories of the files the daemon writes or removes after start. */
export function stateDirsOf(files: ReadonlyArray<string | null | undefined>): string[] {
  return files.filter((f): f is string => !!f).map((f) => path.dirname(f));
}

/**
 * Switches to the user. `keepSysTime`: keep CAP_SYS_TIME (system clock). Returns a line for the
 * log. Throws a clear Error when it cannot do what is asked.
 */
export function dropPrivileges(ids: UserIds, keepSysTime: boolean): string {
  const drop = (native as unknown as { dropPrivileges?: (u: number, g: number, caps: number[]) => bigint } | null)
    ?.dropPrivileges;
  if (drop) {
    const eff = drop(ids.uid, ids.gid, keepSysTime ? [CAP_SYS_TIME] : []);
    if (keepSysTime && (eff & (1n << BigInt(CAP_SYS_TIME))) === 0n) {
      throw new Error('CAP_SYS_TIME was not kept after switching user');
    }
    return `Dropped root privileges to ${ids.name} (uid ${ids.uid})${keepSysTime ? ', keeping CAP_SYS_TIME' : ''}`;
  }
  if (keepSysTime) {
    throw new Error('keeping CAP_SYS_TIME after switching user needs the native addon; use -x, or run without -u/user');
  }
  process.setgroups?.([]);
  process.setgid?.(ids.gid);
  process.setuid?.(ids.uid);
  return `Dropped root privileges to ${ids.name} (uid ${ids.uid})`;
}
