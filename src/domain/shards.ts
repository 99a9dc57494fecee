/**
 * Where a user's data lives. User ids hash into a fixed number of buckets, and a small table in the
 * configuration (`SHARD_MAP`) maps buckets to databases, so adding a database is moving buckets,
 * never rehashing users. Pure: no bindings here, only names.
 */

/** Fixed forever: changing it would move every user. */
export const BUCKETS = 256;

/** The bucket of a user id (or of an inline recipient's address index): FNV-1a, 32 bits. */
export function bucketOfKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % BUCKETS;
}

/** How many shard databases a deployment may bind: `DB_0` … `DB_63`. */
export const MAX_SHARD_DATABASES = 64;

/** The database binding that holds every bucket when no `SHARD_MAP` is set: one database. */
export const DEFAULT_DATABASE = 'DB';

/**
 * Parses `SHARD_MAP`: comma-separated `<first>-<last>:<binding>` (or `<bucket>:<binding>`), which
 * must name every bucket 0-255 exactly once. Returns the binding name per bucket, or the problem.
 */
export function parseShardMap(text: string | undefined): { map: string[] } | { problem: string } {
  if (text === undefined || text.trim() === '')
    return { map: Array.from({ length: BUCKETS }, () => DEFAULT_DATABASE) };
  const map: (string | undefined)[] = Array.from({ length: BUCKETS });
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^(\d{1,3})(?:-(\d{1,3}))?:([A-Z][A-Z0-9_]*)$/.exec(part);
    if (!match) return { problem: `"${part}" is not <first>-<last>:<BINDING>` };
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (first > last || last >= BUCKETS) return { problem: `"${part}" is outside buckets 0-${BUCKETS - 1}` };
    for (let b = first; b <= last; b++) {
      if (map[b] !== undefined) return { problem: `bucket ${b} is mapped twice` };
      map[b] = match[3];
    }
  }
  // biome-ignore lint/complexity/useIndexOf: indexOf skips the holes of a sparse array, findIndex visits them
  const missing = map.findIndex((name) => name === undefined);
  if (missing >= 0) return { problem: `bucket ${missing} is not mapped` };
  return { map: map as string[] };
}

/** The distinct databases a map names, in bucket order. */
export function databasesOf(map: readonly string[]): string[] {
  return [...new Set(map)];
}
