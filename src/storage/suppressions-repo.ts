import type { Channel } from '../domain/channels';

/** One suppression-list key: a channel and the keyed hash of an address (never the address). */
export interface SuppressionKey {
  channel: Channel;
  addressHash: string;
}

export interface Suppression extends SuppressionKey {
  reason: string;
  createdAt: string;
}

/** Encodes a key for Set membership; the hash alphabet (base64url) has no ':' in it. */
export const keyOf = (channel: string, addressHash: string) => `${channel}:${addressHash}`;

/** The only code with SQL for the `suppressions` table. */
export class SuppressionsRepo {
  constructor(private readonly db: D1Database) {}

  /**
   * Which of `keys` are suppressed, as `keyOf(channel, hash)` strings: ONE query whatever the
   * number of keys, because they travel as a single JSON parameter and each is a primary-key probe.
   */
  async findSuppressed(keys: readonly SuppressionKey[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const pairs = JSON.stringify(keys.map((key) => [key.channel, key.addressHash]));
    const { results } = await this.db
      .prepare(
        `SELECT s.channel, s.address_hash FROM json_each(?) AS j
         JOIN suppressions AS s
           ON s.channel = json_extract(j.value, '$[0]') AND s.address_hash = json_extract(j.value, '$[1]')`,
      )
      .bind(pairs)
      .all<{ channel: string; address_hash: string }>();
    return new Set(results.map((row) => keyOf(row.channel, row.address_hash)));
  }

  /** Statement adding a key; an existing entry keeps its first reason and time (no second write). */
  insertStatement(key: SuppressionKey, reason: string, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare(
        `INSERT INTO suppressions (channel, address_hash, reason, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (channel, address_hash) DO NOTHING`,
      )
      .bind(key.channel, key.addressHash, reason, nowMs);
  }

  /** Statement removing a key (an operator lifting a suppression). */
  deleteStatement(key: SuppressionKey): D1PreparedStatement {
    return this.db
      .prepare('DELETE FROM suppressions WHERE channel = ? AND address_hash = ?')
      .bind(key.channel, key.addressHash);
  }

  async get(key: SuppressionKey): Promise<Suppression | null> {
    const row = await this.db
      .prepare('SELECT reason, created_at FROM suppressions WHERE channel = ? AND address_hash = ?')
      .bind(key.channel, key.addressHash)
      .first<{ reason: string; created_at: number }>();
    return row ? { ...key, reason: row.reason, createdAt: new Date(row.created_at).toISOString() } : null;
  }
}
