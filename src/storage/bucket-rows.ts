import { bucketOfKey } from '../domain/shards';

/**
 * The rows of one bucket in one database, for moving it (the only SQL that reads or writes a
 * bucket as a whole). Rows of a locked bucket are refused by the database's triggers
 * (`migrations/0012_bucket_moves.sql`); the move's own batches open the lock for themselves,
 * which is safe because a D1 batch is one transaction.
 */

/** SQL for the bucket an id column names (the same arithmetic as `bucketOfId`). */
export function bucketOfIdSql(column: string): string {
  const alphabet = "'0123456789abcdefghjkmnpqrstvwxyz'";
  const char = (offset: number) =>
    `instr(${alphabet}, substr(${column}, instr(${column}, '_') + ${offset}, 1)) - 1`;
  return `((${char(11)}) * 32 + ${char(12)}) % 256`;
}

/** A condition true for rows whose bucket is not locked in this database (the crons skip them). */
export function unlockedSql(idColumn: string): string {
  return `NOT EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ${bucketOfIdSql(idColumn)} AND open = 0)`;
}

/** Whether a D1 error is a write refused because its bucket is locked (moving). */
export function isBucketLocked(error: unknown): boolean {
  return error instanceof Error && error.message.includes('bucket_locked');
}

/** A table a bucket's rows live in, and how to find them. */
interface BucketTable {
  name: string;
  key: string;
  /** The bucket's rows; one `?` for the bucket. */
  where: string;
  /** Columns the target assigns itself (an autoincrement id). */
  skip?: string;
}

/** Every table with per-user rows, in the order they are copied. */
export const BUCKET_TABLES: readonly BucketTable[] = [
  { name: 'contacts', key: 'user_id', where: 'bucket = ?' },
  { name: 'notification_settings', key: 'user_id', where: 'bucket = ?' },
  { name: 'user_keys', key: 'user_id', where: 'bucket = ?' },
  { name: 'topic_subscriptions', key: 'sub_key', where: 'bucket = ?' },
  { name: 'deliveries', key: 'id', where: `${bucketOfIdSql('id')} = ?` },
  { name: 'dead_letters', key: 'delivery_id', where: `${bucketOfIdSql('delivery_id')} = ?` },
  { name: 'outbox', key: 'id', where: `${bucketOfIdSql('delivery_id')} = ?`, skip: 'id' },
];

/** Where a paged pass over a bucket's tables stands: the table, and the last key done in it. */
export interface TableCursor {
  table: number;
  after: string | number | null;
}

export interface LockRow {
  bucket: number;
  reason: string;
  since: number;
}

const SAFE_COLUMN = /^[a-z_][a-z0-9_]*$/;

/** Rows copied per call; the rows travel as one JSON parameter (D1 takes up to 2 MB). */
const COPY_ROWS = 200;
const DELETE_ROWS = 500;
const BACKFILL_ROWS = 500;

export class BucketRows {
  constructor(private readonly db: D1Database) {}

  async locks(): Promise<LockRow[]> {
    const { results } = await this.db
      .prepare('SELECT bucket, reason, since FROM buckets_locked ORDER BY bucket')
      .all<LockRow>();
    return results;
  }

  async lock(bucket: number, reason: 'incoming' | 'away', nowMs: number): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO buckets_locked (bucket, reason, open, since) VALUES (?, ?, 0, ?)
         ON CONFLICT (bucket) DO UPDATE SET reason = excluded.reason, open = 0, since = excluded.since`,
      )
      .bind(bucket, reason, nowMs)
      .run();
  }

  async unlock(bucket: number): Promise<void> {
    await this.db.prepare('DELETE FROM buckets_locked WHERE bucket = ?').bind(bucket).run();
  }

  /**
   * Fills in the bucket of contact and preference rows written before rows carried one; true
   * when none is left. Runs before a lock, so every row of the bucket is then guarded.
   */
  async backfillBuckets(): Promise<boolean> {
    for (const table of ['contacts', 'notification_settings']) {
      const { results } = await this.db
        .prepare(`SELECT user_id FROM ${table} WHERE bucket IS NULL LIMIT ?`)
        .bind(BACKFILL_ROWS)
        .all<{ user_id: string }>();
      if (results.length === 0) continue;
      await this.db.batch(
        results.map((row) =>
          this.db
            .prepare(`UPDATE ${table} SET bucket = ? WHERE user_id = ? AND bucket IS NULL`)
            .bind(bucketOfKey(row.user_id), row.user_id),
        ),
      );
      return false;
    }
    return true;
  }

  /** Statements around `inner` that let it change the locked bucket's rows, in one batch. */
  private opened(bucket: number, inner: D1PreparedStatement[]): D1PreparedStatement[] {
    const open = (value: number) =>
      this.db.prepare('UPDATE buckets_locked SET open = ? WHERE bucket = ?').bind(value, bucket);
    return [open(1), ...inner, open(0)];
  }

  /**
   * Copies the next page of a bucket's rows from this database into `target` (replacing any row
   * with the same key there). Returns where the next page starts, or null when all are copied.
   */
  async copyPage(bucket: number, cursor: TableCursor, target: BucketRows): Promise<TableCursor | null> {
    const table = BUCKET_TABLES[cursor.table];
    if (!table) return null;
    const { results } = await this.db
      .prepare(
        `SELECT * FROM ${table.name} WHERE ${table.where} ${cursor.after === null ? '' : `AND ${table.key} > ?`}
         ORDER BY ${table.key} LIMIT ?`,
      )
      .bind(bucket, ...(cursor.after === null ? [] : [cursor.after]), COPY_ROWS)
      .all<Record<string, unknown>>();
    if (results.length > 0) await target.insertRows(bucket, table, results);
    const last = results.at(-1);
    if (results.length < COPY_ROWS || !last) return { table: cursor.table + 1, after: null };
    return { table: cursor.table, after: last[table.key] as string | number };
  }

  private async insertRows(
    bucket: number,
    table: BucketTable,
    rows: readonly Record<string, unknown>[],
  ): Promise<void> {
    const columns = Object.keys(rows[0] ?? {}).filter((c) => c !== table.skip && SAFE_COLUMN.test(c));
    const values = columns.map((c) => `json_extract(value, '$.${c}')`).join(', ');
    const insert = this.db
      .prepare(
        `INSERT OR REPLACE INTO ${table.name} (${columns.join(', ')}) SELECT ${values} FROM json_each(?)`,
      )
      .bind(JSON.stringify(rows));
    await this.db.batch(this.opened(bucket, [insert]));
  }

  /**
   * Removes the next page of a bucket's rows here (the source after a move, or what an earlier
   * attempt left in the target). Returns where the next page starts, or null when none is left.
   */
  async deletePage(bucket: number, cursor: TableCursor): Promise<TableCursor | null> {
    const table = BUCKET_TABLES[cursor.table];
    if (!table) return null;
    const after = cursor.after === null ? '' : `AND ${table.key} > ?`;
    const [, removed] = await this.db.batch<Record<string, string | number>>(
      this.opened(bucket, [
        this.db
          .prepare(
            `DELETE FROM ${table.name} WHERE ${table.key} IN
               (SELECT ${table.key} FROM ${table.name} WHERE ${table.where} ${after} ORDER BY ${table.key} LIMIT ?)
             RETURNING ${table.key} AS key`,
          )
          .bind(bucket, ...(cursor.after === null ? [] : [cursor.after]), DELETE_ROWS),
      ]),
    );
    const keys = (removed?.results ?? []).map((row) => row.key as string | number);
    if (keys.length < DELETE_ROWS) return { table: cursor.table + 1, after: null };
    // Keys are ids (text) or outbox row numbers: compared as they are, like ORDER BY does.
    const last = keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).at(-1) ?? null;
    return { table: cursor.table, after: last };
  }

  /** How many rows of the bucket this database holds, per table. */
  async count(bucket: number): Promise<Record<string, number>> {
    const answers = await this.db.batch<{ n: number }>(
      BUCKET_TABLES.map((t) =>
        this.db.prepare(`SELECT count(*) AS n FROM ${t.name} WHERE ${t.where}`).bind(bucket),
      ),
    );
    return Object.fromEntries(BUCKET_TABLES.map((t, i) => [t.name, answers[i]?.results[0]?.n ?? 0]));
  }
}
