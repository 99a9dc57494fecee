import {
  BUCKETS,
  bucketOfKey,
  DEFAULT_DATABASE,
  databasesOf,
  MAX_SHARD_DATABASES,
  parseShardMap,
} from '../domain/shards';
import { bucketOfId } from '../lib/ids';
import { log } from '../lib/log';
import { type BucketMove, BucketMovesRepo } from './bucket-moves-repo';

/** One database of the deployment, by its binding name. */
export interface Shard {
  name: string;
  db: D1Database;
}

/** The database each prepared statement was made on, so one commit can run on several. */
const owners = new WeakMap<D1PreparedStatement, D1Database>();

/** The database a statement was prepared on (through a tracked binding), if known. */
export function ownerOf(statement: D1PreparedStatement): D1Database | undefined {
  return owners.get(statement);
}

/** The database a statement runs on in a commit: the one it was prepared on, else `fallback`. */
export function databaseOf(statement: D1PreparedStatement, fallback: D1Database): D1Database {
  return owners.get(statement) ?? fallback;
}

/** Tracked bindings, one per raw binding, so statements remember where they belong. */
const tracked = new WeakMap<D1Database, D1Database>();

/**
 * A D1 binding whose statements (prepared and bound) remember it. Nothing else changes: the
 * statements are D1's own objects, so `batch` takes them as before.
 */
export function trackD1(db: D1Database): D1Database {
  const hit = tracked.get(db);
  if (hit) return hit;
  const remember = (statement: D1PreparedStatement): D1PreparedStatement => {
    owners.set(statement, db);
    const bind = statement.bind.bind(statement);
    statement.bind = (...values: unknown[]) => remember(bind(...values));
    return statement;
  };
  const wrapped = new Proxy(db, {
    get(target, property) {
      if (property === 'prepare') return (sql: string) => remember(target.prepare(sql));
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  tracked.set(db, wrapped);
  return wrapped;
}

/** How long a router trusts the moves it read from the home database. */
export const MOVES_TTL_MS = 10_000;

/** The binding names a deployment may use for databases: the home one and `DB_0` … `DB_63`. */
const DATABASE_BINDINGS = [
  DEFAULT_DATABASE,
  ...Array.from({ length: MAX_SHARD_DATABASES }, (_, i) => `DB_${i}`),
];

/**
 * Routes by bucket: a user id hashes into one of 256 buckets, a delivery id names its bucket, and
 * `SHARD_MAP` maps buckets to databases (the env schema has checked it), as amended by the buckets
 * moved since (`bucket_moves` in the home database, read again every `MOVES_TTL_MS`). The home
 * database (`DB`) holds cross-user data whatever the map says.
 */
export class ShardRouter {
  readonly home: Shard;
  /** Every database bound, serving buckets or not (a move's target may serve none yet). */
  readonly databases: readonly Shard[];
  private readonly named = new Map<string, Shard>();
  private readonly base: readonly string[];
  private byBucket: Shard[] = [];
  private serving: Shard[] = [];
  private moving = new Set<number>();
  private pendingMoves: BucketMove[] = [];
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | null = null;

  constructor(env: { DB: D1Database; SHARD_MAP?: string | undefined } & Record<string, unknown>) {
    const parsed = parseShardMap(env.SHARD_MAP);
    this.base = 'map' in parsed ? parsed.map : Array.from({ length: BUCKETS }, () => DEFAULT_DATABASE);
    for (const name of new Set([...DATABASE_BINDINGS, ...databasesOf(this.base)])) {
      const db = (env[name] as D1Database | undefined) ?? (this.base.includes(name) ? env.DB : undefined);
      if (db) this.named.set(name, { name, db: trackD1(db) });
    }
    this.home = this.named.get(DEFAULT_DATABASE) as Shard;
    this.databases = [...this.named.values()];
    this.apply([]);
  }

  /** Every database some bucket lives in, in bucket order: what a listing fans out over. */
  get shards(): readonly Shard[] {
    return this.serving;
  }

  /**
   * Which database serves which buckets, as text (`0-127:DB_0,128-255:DB_1`): work that walks the
   * databases one by one (a topic's expansion) compares it to see whether a bucket moved meanwhile.
   */
  get layout(): string {
    const runs: string[] = [];
    let start = 0;
    this.byBucket.forEach((shard, bucket) => {
      if (this.byBucket[bucket + 1] === shard) return;
      runs.push(`${start}-${bucket}:${shard.name}`);
      start = bucket + 1;
    });
    return runs.join(',');
  }

  /** A database by its binding name, if bound. */
  database(name: string): Shard | undefined {
    return this.named.get(name);
  }

  /** Routes by `SHARD_MAP` amended by these moves (a bucket moved once `moved`). */
  apply(moves: readonly BucketMove[]): void {
    const map = [...this.base];
    this.moving = new Set();
    for (const move of moves) {
      if (!this.named.has(move.to) || !this.named.has(move.from)) continue;
      if (move.phase === 'moved' || move.phase === 'done') map[move.bucket] = move.to;
      else {
        map[move.bucket] = move.from;
        this.moving.add(move.bucket);
      }
    }
    this.pendingMoves = moves.filter((m) => m.phase !== 'done');
    this.byBucket = map.map((name) => this.named.get(name) ?? this.home);
    this.serving = [...new Set(this.byBucket)];
  }

  /** Reads the moves again when they are older than `MOVES_TTL_MS` (one query per isolate then). */
  async refresh(nowMs: number): Promise<void> {
    if (nowMs - this.readAt < MOVES_TTL_MS) return;
    this.reading ??= new BucketMovesRepo(this.home.db)
      .all()
      .then((moves) => {
        this.apply(moves);
        this.readAt = nowMs;
      })
      .catch((error: unknown) => {
        // The last map stays (until the next read is due): a write it misroutes is refused by the
        // bucket's lock in that database, never lost.
        this.readAt = nowMs;
        log('warn', 'shards.moves_unreadable', {
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => {
        this.reading = null;
      });
    await this.reading;
  }

  /** Whether a bucket is being moved (locked: its rows are copied, nothing may change them). */
  isMoving(bucket: number): boolean {
    return this.moving.has(bucket);
  }

  /**
   * The buckets whose rows `shard` holds for another database during a move: the copy in the
   * target until the switch, the source's rows from the switch until they are cleaned. Listings
   * and metrics leave them out there, so nothing is counted twice.
   */
  foreignBuckets(shard: Shard): number[] {
    return this.pendingMoves
      .filter((m) => (m.phase === 'moved' ? m.from : m.to) === shard.name)
      .map((m) => m.bucket);
  }

  /** Whether a row with this id, found in `shard`, belongs there (not a move's other copy). */
  owns(shard: Shard, id: string): boolean {
    return this.forId(id) === shard;
  }

  forBucket(bucket: number): Shard {
    return this.byBucket[bucket] ?? this.home;
  }

  /** A user's database. */
  forUser(userId: string): Shard {
    return this.forBucket(bucketOfKey(userId));
  }

  /** The database a delivery (or any id with a bucket) lives in. */
  forId(id: string): Shard {
    return this.forBucket(bucketOfId(id) ?? 0);
  }

  /** Groups ids by the database they live in. */
  groupIds(ids: readonly string[]): Map<Shard, string[]> {
    const groups = new Map<Shard, string[]>();
    for (const id of ids) {
      const shard = this.forId(id);
      const list = groups.get(shard) ?? [];
      list.push(id);
      groups.set(shard, list);
    }
    return groups;
  }
}

/**
 * Statements grouped by the database they were prepared on (untracked ones: `fallback`), each
 * group in their order, the `fallback` (home) database's first: what one commit runs as one batch
 * per database.
 */
export function byDatabase(
  statements: readonly D1PreparedStatement[],
  fallback: D1Database,
): Map<D1Database, D1PreparedStatement[]> {
  // The home database first: a producer's key row there is what detects a race, before any part.
  const groups = new Map<D1Database, D1PreparedStatement[]>([[fallback, []]]);
  for (const statement of statements) {
    const db = databaseOf(statement, fallback);
    const list = groups.get(db) ?? [];
    list.push(statement);
    groups.set(db, list);
  }
  if (groups.get(fallback)?.length === 0) groups.delete(fallback);
  return groups;
}

/**
 * Runs statements as one D1 batch per database they were prepared on (in their order within
 * each), the `fallback` (home) database's first: atomic within a database, not across databases.
 * Untracked statements run on `fallback`.
 */
export async function commitAcross(
  statements: readonly D1PreparedStatement[],
  fallback: D1Database,
): Promise<D1Result[]> {
  const results = new Map<D1PreparedStatement, D1Result>();
  for (const [db, list] of byDatabase(statements, fallback)) {
    const answers = await db.batch(list);
    list.forEach((statement, i) => {
      const answer = answers[i];
      if (answer) results.set(statement, answer);
    });
  }
  return statements.map((statement) => results.get(statement) as D1Result);
}
