/**
 * Buckets moved (or moving) away from where `SHARD_MAP` puts them, in the home database: the
 * shard router reads them to route, the move writes them step by step.
 */

/** locking → locked → copied → moved → done. Until `moved`, `from` serves the bucket. */
export type MovePhase = 'locking' | 'locked' | 'copied' | 'moved' | 'done';

export interface BucketMove {
  bucket: number;
  from: string;
  to: string;
  phase: MovePhase;
  /** Where a paged step stands (JSON), between calls. */
  cursor: string | null;
  updatedAt: number;
}

interface MoveRow {
  bucket: number;
  from_db: string;
  to_db: string;
  phase: MovePhase;
  cursor: string | null;
  updated_at: number;
}

const toMove = (row: MoveRow): BucketMove => ({
  bucket: row.bucket,
  from: row.from_db,
  to: row.to_db,
  phase: row.phase,
  cursor: row.cursor,
  updatedAt: row.updated_at,
});

export class BucketMovesRepo {
  constructor(private readonly db: D1Database) {}

  async all(): Promise<BucketMove[]> {
    const { results } = await this.db.prepare('SELECT * FROM bucket_moves ORDER BY bucket').all<MoveRow>();
    return results.map(toMove);
  }

  async get(bucket: number): Promise<BucketMove | null> {
    const row = await this.db
      .prepare('SELECT * FROM bucket_moves WHERE bucket = ?')
      .bind(bucket)
      .first<MoveRow>();
    return row ? toMove(row) : null;
  }

  async put(move: BucketMove): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO bucket_moves (bucket, from_db, to_db, phase, cursor, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (bucket) DO UPDATE SET from_db = excluded.from_db, to_db = excluded.to_db,
           phase = excluded.phase, cursor = excluded.cursor, updated_at = excluded.updated_at`,
      )
      .bind(move.bucket, move.from, move.to, move.phase, move.cursor, move.updatedAt)
      .run();
  }
}
