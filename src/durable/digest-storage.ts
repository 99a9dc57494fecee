/**
 * The Recipient object's open digests: one row per (type, channel, rendered key) still collecting,
 * with its items (newest last) and when its window closes. A fold writes its row once; closing
 * deletes it. Separate from the caps' one-row state: a digest changes on every fold.
 */
export interface DigestItem {
  deliveryId: string;
  notificationId: string;
  atMs: number;
}

export interface OpenDigest {
  key: string;
  channel: string;
  items: DigestItem[];
  closesAtMs: number;
}

export function createDigestSchema(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS digests (
    key TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    items TEXT NOT NULL,
    closes_at INTEGER NOT NULL
  ) WITHOUT ROWID`);
}

type DigestRow = { key: string; channel: string; items: string; closes_at: number };

const toDigest = (row: DigestRow): OpenDigest => ({
  key: row.key,
  channel: row.channel,
  items: JSON.parse(row.items) as DigestItem[],
  closesAtMs: row.closes_at,
});

export function readDigest(sql: SqlStorage, key: string): OpenDigest | null {
  const row = sql.exec<DigestRow>('SELECT * FROM digests WHERE key = ?', key).toArray()[0];
  return row ? toDigest(row) : null;
}

export function writeDigest(sql: SqlStorage, digest: OpenDigest): void {
  sql.exec(
    `INSERT INTO digests (key, channel, items, closes_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET items = excluded.items, closes_at = excluded.closes_at`,
    digest.key,
    digest.channel,
    JSON.stringify(digest.items),
    digest.closesAtMs,
  );
}

export function deleteDigest(sql: SqlStorage, key: string): void {
  sql.exec('DELETE FROM digests WHERE key = ?', key);
}

export function allDigests(sql: SqlStorage): OpenDigest[] {
  return sql.exec<DigestRow>('SELECT * FROM digests ORDER BY closes_at').toArray().map(toDigest);
}

/** When the next window closes, or null. */
export function nextClose(sql: SqlStorage): number | null {
  const row = sql.exec<{ at: number | null }>('SELECT min(closes_at) AS at FROM digests').one();
  return row.at ?? null;
}

/** A later escalation step waiting for its time in the recipient's object. */
export interface StepTimer {
  deliveryId: string;
  channel: string;
  dueAtMs: number;
}

export function createStepSchema(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS step_timers (
    delivery_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    due_at INTEGER NOT NULL
  ) WITHOUT ROWID`);
}

export function addStepTimers(sql: SqlStorage, timers: readonly StepTimer[]): void {
  for (const t of timers)
    sql.exec(
      'INSERT OR IGNORE INTO step_timers (delivery_id, channel, due_at) VALUES (?, ?, ?)',
      t.deliveryId,
      t.channel,
      t.dueAtMs,
    );
}

export function dueStepTimers(sql: SqlStorage, nowMs: number): StepTimer[] {
  return sql
    .exec<{ delivery_id: string; channel: string; due_at: number }>(
      'SELECT * FROM step_timers WHERE due_at <= ? ORDER BY due_at',
      nowMs,
    )
    .toArray()
    .map((r) => ({ deliveryId: r.delivery_id, channel: r.channel, dueAtMs: r.due_at }));
}

export function deleteStepTimers(sql: SqlStorage, ids: readonly string[]): void {
  sql.exec(
    'DELETE FROM step_timers WHERE delivery_id IN (SELECT value FROM json_each(?))',
    JSON.stringify(ids),
  );
}

/** The next step due, or null. */
export function nextStepDue(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>('SELECT min(due_at) AS at FROM step_timers').one().at ?? null;
}
