import type { Env } from '../../src/config/env';
import { BUCKETS, bucketOfKey } from '../../src/domain/shards';
import { createServices } from '../../src/services/container';
import { commitAcross, type Shard, type ShardRouter } from '../../src/storage/shard-router';
import { testEnv, uniqueUser } from './api';

/**
 * Where rows live since D1 is sharded: the home database (`DB`) holds cross-user data; a user's
 * contact, preferences, deliveries, outbox rows and dead letters live in the shard their bucket
 * maps to (`SHARD_MAP`: DB_0 and DB_1 in the tests). Tests read and write through these helpers,
 * never `testEnv.DB` for shard tables: `db.batch(statements)` runs every statement on `db`,
 * whatever database it was prepared on.
 */

/** The test env's router (one per env object, as the Worker's). */
export function router(env: Env = testEnv): ShardRouter {
  return createServices(env).router;
}

/** The home database: api_keys, notification_keys, suppressions, provider_settings, alerts… */
export function homeDb(env: Env = testEnv): D1Database {
  return router(env).home.db;
}

/** Every shard database (not the home database), in bucket order. */
export function allShards(env: Env = testEnv): readonly Shard[] {
  return router(env).shards;
}

/** The database a delivery (or any id with a bucket) lives in. */
export function dbOfDelivery(id: string, env: Env = testEnv): D1Database {
  return router(env).forId(id).db;
}

/** The database a user's contact, preferences and deliveries live in. */
export function dbOfUser(userId: string, env: Env = testEnv): D1Database {
  return router(env).forUser(userId).db;
}

/** The index (in `allShards()`) of the shard a bucket maps to. */
export function shardIndexOfBucket(bucket: number, env: Env = testEnv): number {
  const r = router(env);
  return r.shards.indexOf(r.forBucket(bucket));
}

/** The index (in `allShards()`) of the shard a delivery id's bucket maps to. */
export function shardIndexOfId(id: string, env: Env = testEnv): number {
  const r = router(env);
  return r.shards.indexOf(r.forId(id));
}

/** The index (in `allShards()`) of a user's shard. */
export function shardIndexOfUser(userId: string, env: Env = testEnv): number {
  const r = router(env);
  return r.shards.indexOf(r.forUser(userId));
}

/** The first bucket that maps to the shard at `index` of `allShards()`. */
export function bucketInShard(index: number, env: Env = testEnv): number {
  const shard = allShards(env)[index];
  for (let b = 0; b < BUCKETS; b++) if (shard && router(env).forBucket(b) === shard) return b;
  throw new Error(`no bucket maps to shard ${index}`);
}

/** A user id no other test uses (see `uniqueUser`) whose data lives in the shard at `index`. */
export function userInShard(index: number, prefix = 'user', env: Env = testEnv): string {
  const shard = allShards(env)[index];
  if (!shard) throw new Error(`no shard ${index}`);
  for (;;) {
    const userId = uniqueUser(prefix);
    if (router(env).forBucket(bucketOfKey(userId)) === shard) return userId;
  }
}

/** Runs a read on every shard and concatenates the rows (shard order). */
export async function sql<T = Record<string, unknown>>(query: string, ...params: unknown[]): Promise<T[]> {
  const parts = await Promise.all(
    allShards().map(
      async (shard) =>
        (
          await shard.db
            .prepare(query)
            .bind(...params)
            .all<T>()
        ).results,
    ),
  );
  return parts.flat();
}

/** The one row a read finds over every shard (null when none); fails when several shards answer. */
export async function sqlFirst<T = Record<string, unknown>>(
  query: string,
  ...params: unknown[]
): Promise<T | null> {
  const rows = await sql<T>(query, ...params);
  if (rows.length > 1) throw new Error(`${rows.length} rows for ${query}`);
  return rows[0] ?? null;
}

/** `SELECT count(*) AS n …` on every shard, summed. */
export async function countAll(query: string, ...params: unknown[]): Promise<number> {
  return (await sql<{ n: number }>(query, ...params)).reduce((sum, row) => sum + row.n, 0);
}

/** Rows of a shard table in each database: home first, then every shard, by binding name. */
export async function rowsPerDatabase(
  query: string,
  ...params: unknown[]
): Promise<Record<string, Record<string, unknown>[]>> {
  const r = router();
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const shard of [r.home, ...r.shards]) {
    out[shard.name] = (
      await shard.db
        .prepare(query)
        .bind(...params)
        .all()
    ).results;
  }
  return out;
}

/**
 * Runs repository statements (prepared through `createServices(env)`), each on the database it
 * was prepared on: one batch per database, the home database's first.
 */
export async function commit(statements: readonly D1PreparedStatement[], env: Env = testEnv): Promise<void> {
  if (statements.length > 0) await commitAcross(statements, homeDb(env));
}

/** The names of every D1 binding of the test env: the home database and each shard. */
export function databaseBindings(env: Env = testEnv): string[] {
  const r = router(env);
  return [...new Set([r.home.name, ...r.shards.map((s) => s.name)])];
}

/**
 * Env overrides that replace every database binding (home and shards) with `wrap(binding)`:
 * a D1 outage, a meter, a fault, applied wherever the rows are.
 */
export function everyDatabase(
  wrap: (db: D1Database, name: string) => D1Database,
  env: Env = testEnv,
): Record<string, D1Database> {
  const raw = env as unknown as Record<string, D1Database>;
  return Object.fromEntries(databaseBindings(env).map((name) => [name, wrap(raw[name] as D1Database, name)]));
}
