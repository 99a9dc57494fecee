import type { Env } from '../../src/config/env';
import { DEFAULT_DATABASE, databasesOf, parseShardMap } from '../../src/domain/shards';

/**
 * What "writes nothing" is checked against: every application table's rows and every R2 object.
 *
 * Test files do not share storage (each runs in its own Miniflare instance, checked when these
 * helpers were written), but a file's own background work could still write between two reads:
 * callers use `envWithCapturedQueues()` so no queue consumer runs, and `api()` waits for
 * `waitUntil` work before it returns.
 */

/** Tables that belong to the platform or to SQLite, not to Herald. */
const IGNORED_TABLE = /^(d1_migrations$|_cf_|sqlite_)/;

/** Every Herald table, from sqlite_master, so a table added by a new migration is covered. */
export async function tableNames(db: D1Database): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all<{ name: string }>();
  return results.map((r) => r.name).filter((name) => !IGNORED_TABLE.test(name));
}

const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Rows per table, in one query. */
export async function rowCounts(db: D1Database): Promise<Record<string, number>> {
  const tables = await tableNames(db);
  const row = await db
    .prepare(`SELECT ${tables.map((t) => `(SELECT count(*) FROM ${quoted(t)}) AS ${quoted(t)}`).join(', ')}`)
    .first<Record<string, number>>();
  return { ...row };
}

/** Per table: its row count and a digest of every row, so an UPDATE is seen as well as an INSERT. */
export interface StorageSnapshot {
  tables: Record<string, { rows: number; digest: string }>;
  /** R2 template objects: key → etag. */
  objects: Record<string, string>;
}

async function sha256(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Every database of an env: the home database (`DB`) and each shard its `SHARD_MAP` names, by
 * binding name (the shards' tables are the home database's: one set of migrations).
 */
export function databasesOfEnv(env: Pick<Env, 'DB' | 'SHARD_MAP'>): [string, D1Database][] {
  const parsed = parseShardMap(env.SHARD_MAP);
  const names = [DEFAULT_DATABASE, ...('map' in parsed ? databasesOf(parsed.map) : [])];
  const bindings = env as unknown as Record<string, D1Database | undefined>;
  return [...new Set(names)].map((name) => [name, bindings[name] ?? env.DB]);
}

/**
 * Reads every Herald table of every database (one D1 batch each: the home database and each
 * shard) and lists the templates bucket. A table's rows are counted over every database, and its
 * digest covers which database holds each row, so a row moved between shards shows too.
 */
export async function storageSnapshot(
  env: Pick<Env, 'DB' | 'SHARD_MAP' | 'TEMPLATES'>,
): Promise<StorageSnapshot> {
  const snapshot: StorageSnapshot = { tables: {}, objects: {} };
  const lines = new Map<string, string[]>();
  for (const [name, db] of databasesOfEnv(env)) {
    const tables = await tableNames(db);
    const results = await db.batch(tables.map((t) => db.prepare(`SELECT * FROM ${quoted(t)}`)));
    for (const [index, table] of tables.entries()) {
      const rows = (results[index]?.results ?? []) as Record<string, unknown>[];
      lines.set(table, [...(lines.get(table) ?? []), ...rows.map((r) => `${name} ${JSON.stringify(r)}`)]);
    }
  }
  for (const [table, rows] of lines) {
    // Rows in a canonical order: the digest must not depend on the order SQLite returns them in.
    snapshot.tables[table] = { rows: rows.length, digest: await sha256(rows.sort().join('\n')) };
  }
  let cursor: string | undefined;
  do {
    const page = await env.TEMPLATES.list({ cursor, limit: 1000 });
    for (const object of page.objects) snapshot.objects[object.key] = object.etag;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return snapshot;
}

/** Human-readable differences between two snapshots; empty when nothing was written. */
export function snapshotChanges(before: StorageSnapshot, after: StorageSnapshot): string[] {
  const changes: string[] = [];
  for (const table of new Set([...Object.keys(before.tables), ...Object.keys(after.tables)])) {
    const a = before.tables[table];
    const b = after.tables[table];
    if (!a || !b) changes.push(`table ${table} ${a ? 'dropped' : 'created'}`);
    else if (a.rows !== b.rows) changes.push(`${table}: ${a.rows} → ${b.rows} rows`);
    else if (a.digest !== b.digest) changes.push(`${table}: rows changed (same count)`);
  }
  for (const key of new Set([...Object.keys(before.objects), ...Object.keys(after.objects)])) {
    if (before.objects[key] !== after.objects[key]) {
      changes.push(
        `R2 ${key}: ${before.objects[key] ? (after.objects[key] ? 'replaced' : 'deleted') : 'created'}`,
      );
    }
  }
  return changes;
}
