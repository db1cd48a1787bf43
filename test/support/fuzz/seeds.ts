/**
 * Fuzzing seeds: real datagrams captured from chronyd, chronyc, NTPsec's ntpd/ntpdig/ntpq (and
 * NTS packets between two chronyds), stored as hex in test/fixtures/packets/*.json by
 * scripts/capture-fuzz-seeds.mjs, plus a few synthetic ones so every kind has seeds even
 * before a capture. Text seeds (config and key files) live in text-seeds.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export type SeedKind = 'ntp' | 'nts-ntp' | 'mode6' | 'cmdmon' | 'nts-ke' | 'file';

export interface SeedPacket {
  kind: SeedKind;
  /** Who sent it: "chronyd 4.3 client", "ntpq (NTPsec 1.2.2)", ... */
  source: string;
  description: string;
  hex: string;
}

export interface SeedFile {
  description: string;
  packets: SeedPacket[];
}

/** dist/test/support/fuzz → repository root (the fixtures are not compiled). */
export const FIXTURE_DIR = fileURLToPath(new URL('../../../../test/fixtures/packets/', import.meta.url));

let cache: SeedPacket[] | null = null;

/** Every captured seed, in a stable order (file name, then position). */
export function capturedSeeds(dir = FIXTURE_DIR): SeedPacket[] {
  if (cache && dir === FIXTURE_DIR) return cache;
  const out: SeedPacket[] = [];
  if (existsSync(dir)) {
    for (const f of readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .sort()) {
      const parsed = JSON.parse(readFileSync(join(dir, f), 'utf8')) as SeedFile;
      out.push(...parsed.packets);
    }
  }
  if (dir === FIXTURE_DIR) cache = out;
  return out;
}

export function seedsOf(kind: SeedKind): SeedPacket[] {
  return capturedSeeds().filter((s) => s.kind === kind);
}

export function hexToBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** Bytes of every captured seed of `kind`, plus `extra` synthetic ones. */
export function seedBytes(kind: SeedKind, extra: readonly Uint8Array[] = []): Uint8Array[] {
  return [...seedsOf(kind).map((s) => hexToBytes(s.hex)), ...extra];
}
