import { bucketOfKey } from '../domain/shards';
import type { FieldCipher } from '../lib/field-crypto';
import { wrapAad } from '../lib/user-key';
import { rowsByKey } from './rows-by-key';

const _MAX_PARAMS = 100;

interface UserKeyRow {
  user_id: string;
  /** Null once erased. */
  wrapped: string | null;
}

/** The only code with SQL for user_keys (each user's own key, wrapped; `src/lib/user-key.ts`). */
export class UserKeysRepo {
  constructor(
    private readonly db: D1Database,
    private readonly cipher: () => Promise<FieldCipher>,
  ) {}

  /** The wrapped keys of those of `userIds` with a row: null for a user whose key erasure destroyed. */
  async wrappedFor(userIds: readonly string[]): Promise<Map<string, string | null>> {
    const rows = await rowsByKey<UserKeyRow>(
      this.db,
      { table: 'user_keys', key: 'user_id', columns: 'user_id, wrapped' },
      userIds,
    );
    return new Map(rows.map((row) => [row.user_id, row.wrapped]));
  }

  /** Whether the user has a key (not yet erased). */
  async hasKey(userId: string): Promise<boolean> {
    const row = await this.db
      .prepare('SELECT 1 FROM user_keys WHERE user_id = ? AND wrapped IS NOT NULL')
      .bind(userId)
      .first();
    return row !== null;
  }

  /** Whether an erasure destroyed a key of this user (archived copies existed, and are unreadable). */
  async destroyed(userId: string): Promise<boolean> {
    const row = await this.db
      .prepare('SELECT destroyed FROM user_keys WHERE user_id = ?')
      .bind(userId)
      .first<{ destroyed: number }>();
    return row?.destroyed === 1;
  }

  /**
   * Stores keys, one statement for all, each unless its user has a row (two writers racing keep
   * the first; erased stays erased).
   */
  insertStatement(keys: readonly { userId: string; wrapped: string }[], nowMs: number): D1PreparedStatement {
    const rows = keys.map(({ userId, wrapped }) => ({ u: userId, b: bucketOfKey(userId), w: wrapped }));
    return this.db
      .prepare(
        `INSERT INTO user_keys (user_id, bucket, wrapped, created_at)
         SELECT value ->> 'u', value ->> 'b', value ->> 'w', ? FROM json_each(?) WHERE true
         ON CONFLICT (user_id) DO NOTHING`,
      )
      .bind(nowMs, JSON.stringify(rows));
  }

  /**
   * Destroys a user's key: what was sealed with it can never be opened again. The row stays as a
   * tombstone, so a retention run that read the user's rows before the erasure cannot make a new
   * key for them.
   */
  eraseStatement(userId: string, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare(
        `INSERT INTO user_keys (user_id, bucket, wrapped, created_at, erased_at) VALUES (?, ?, NULL, ?, ?)
         ON CONFLICT (user_id) DO UPDATE
           SET destroyed = (destroyed OR wrapped IS NOT NULL), wrapped = NULL, erased_at = excluded.erased_at`,
      )
      .bind(userId, bucketOfKey(userId), nowMs, nowMs);
  }

  /** One page of key rotation: keys wrapped under an older DATA_ENCRYPTION_KEY, re-wrapped. */
  async rotationPage(
    cursor: string,
    limit: number,
  ): Promise<{ statements: D1PreparedStatement[]; unreadable: number; next: string | null }> {
    const cipher = await this.cipher();
    const { results } = await this.db
      .prepare('SELECT user_id, wrapped FROM user_keys WHERE user_id > ? ORDER BY user_id LIMIT ?')
      .bind(cursor, limit)
      .all<UserKeyRow>();
    const statements: D1PreparedStatement[] = [];
    let unreadable = 0;
    for (const row of results.filter((r) => r.wrapped !== null && cipher.needsRotation(r.wrapped))) {
      try {
        const raw = await cipher.decrypt(row.wrapped as string, wrapAad(row.user_id));
        statements.push(
          this.db
            .prepare('UPDATE user_keys SET wrapped = ? WHERE user_id = ? AND wrapped = ?')
            .bind(await cipher.encrypt(raw, wrapAad(row.user_id)), row.user_id, row.wrapped),
        );
      } catch {
        unreadable += 1;
      }
    }
    return {
      statements,
      unreadable,
      next: results.length === limit ? (results.at(-1)?.user_id ?? null) : null,
    };
  }
}
