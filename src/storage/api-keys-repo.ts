/** An API key as stored: never the key itself, only its SHA-256 and a short display prefix. */
export interface StoredApiKey {
  keyHash: string;
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  /** Notification types this key may send; null = any. */
  types: string[] | null;
  /** Notification sources this key may send as; null = any. */
  sources: string[] | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

interface Row {
  key_hash: string;
  id: string;
  name: string;
  prefix: string;
  scopes: string;
  types: string | null;
  sources: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

const COLUMNS =
  'key_hash, id, name, prefix, scopes, types, sources, created_at, expires_at, revoked_at, last_used_at';

function toKey(row: Row): StoredApiKey {
  return {
    keyHash: row.key_hash,
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: JSON.parse(row.scopes) as string[],
    types: row.types === null ? null : (JSON.parse(row.types) as string[]),
    sources: row.sources === null ? null : (JSON.parse(row.sources) as string[]),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

/** How many keys a list returns at most: keys are made by hand, so this is a sanity bound. */
export const MAX_LISTED_KEYS = 1000;

/** The only code with SQL for the `api_keys` table. */
export class ApiKeysRepo {
  constructor(private readonly db: D1Database) {}

  async insert(key: StoredApiKey): Promise<void> {
    await this.db
      .prepare(`INSERT INTO api_keys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .bind(
        key.keyHash,
        key.id,
        key.name,
        key.prefix,
        JSON.stringify(key.scopes),
        key.types === null ? null : JSON.stringify(key.types),
        key.sources === null ? null : JSON.stringify(key.sources),
        key.createdAt,
        key.expiresAt,
        key.revokedAt,
        key.lastUsedAt,
      )
      .run();
  }

  /** One primary-key probe: the authentication path. */
  async findByHash(keyHash: string): Promise<StoredApiKey | null> {
    const row = await this.db
      .prepare(`SELECT ${COLUMNS} FROM api_keys WHERE key_hash = ?`)
      .bind(keyHash)
      .first<Row>();
    return row ? toKey(row) : null;
  }

  async findById(id: string): Promise<StoredApiKey | null> {
    const row = await this.db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`).bind(id).first<Row>();
    return row ? toKey(row) : null;
  }

  /** Every key, newest first (revoked ones included, so an operator sees what was cut off). */
  async list(): Promise<StoredApiKey[]> {
    const { results } = await this.db
      .prepare(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC LIMIT ?`)
      .bind(MAX_LISTED_KEYS)
      .all<Row>();
    return results.map(toKey);
  }

  /** Marks a key revoked; a key revoked before keeps its first time. Returns the row after. */
  async revoke(id: string, nowMs: number): Promise<StoredApiKey | null> {
    const row = await this.db
      .prepare(`UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING ${COLUMNS}`)
      .bind(nowMs, id)
      .first<Row>();
    return row ? toKey(row) : null;
  }

  /**
   * Records a use. Writes the row only when the stored time is older than `minIntervalMs`, so
   * isolates racing on the same key cost at most one row written per interval between them.
   */
  async touch(keyHash: string, nowMs: number, minIntervalMs: number): Promise<void> {
    await this.db
      .prepare(
        `UPDATE api_keys SET last_used_at = ?1
         WHERE key_hash = ?2 AND (last_used_at IS NULL OR last_used_at <= ?1 - ?3)`,
      )
      .bind(nowMs, keyHash, minIntervalMs)
      .run();
  }
}
