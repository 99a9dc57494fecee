import { isChannel } from '../domain/channels';
import { log } from '../lib/log';
import {
  claimKey,
  emptyState,
  isEmptyState,
  parseState,
  pruneState,
  type RecipientState,
  sendKey,
  serializeState,
} from './recipient-state';

/*
 * The Recipient's SQLite storage: one table, one row. Cost is counted per row written (measured in
 * workerd with `cursor.rowsWritten`): writing the recipient's whole state as one row costs 1 row,
 * whatever it holds, where a row per send or claim cost one per entry plus its deletion.
 * WITHOUT ROWID: the primary key is the table, so no hidden index row is written beside it.
 * `CREATE TABLE IF NOT EXISTS` writes once in an object's life and nothing after.
 */
const SCHEMA = `CREATE TABLE IF NOT EXISTS recipient_state (
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL
) WITHOUT ROWID`;

/** The key of the one row. */
const ROW_ID = 1;

/** The tables of the first storage layout (a row per send and per claim), read once and dropped. */
const LEGACY_TABLES = ['sends', 'dedupe_claims'] as const;

export function createSchema(sql: SqlStorage): void {
  sql.exec(SCHEMA);
}

/**
 * The stored state, or an empty one. A row that cannot be read is logged and replaced by an
 * empty state (its caps and claims are lost once) rather than making the recipient unusable.
 * Rows of the first layout, left by an earlier version, are folded in (those still live at `nowMs`)
 * and their tables dropped, in one transaction.
 */
export function readState(storage: DurableObjectStorage, nowMs: number): RecipientState {
  const sql = storage.sql;
  const [row] = sql
    .exec<{ state: string }>('SELECT state FROM recipient_state WHERE id = ?', ROW_ID)
    .toArray();
  let state = emptyState();
  if (row) {
    try {
      state = parseState(row.state);
    } catch (error) {
      log('error', 'recipient.state_unreadable', { error: String(error) });
    }
  }
  const legacy = sql
    .exec<{ name: string }>(
      `SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (${LEGACY_TABLES.map(() => '?').join(', ')})`,
      ...LEGACY_TABLES,
    )
    .toArray()
    .map((table) => table.name);
  if (legacy.length > 0) {
    storage.transactionSync(() => {
      foldLegacyRows(sql, legacy, state);
      pruneState(state, nowMs);
      writeState(sql, state);
      for (const table of legacy) sql.exec(`DROP TABLE ${table}`);
    });
  }
  return state;
}

/** Stores `state` as the one row (pruned by the caller): one row written, or deleted when empty. */
export function writeState(sql: SqlStorage, state: RecipientState): void {
  if (isEmptyState(state)) {
    sql.exec('DELETE FROM recipient_state WHERE id = ?', ROW_ID);
    return;
  }
  sql.exec(
    'INSERT INTO recipient_state (id, state) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state',
    ROW_ID,
    serializeState(state),
  );
}

/**
 * The first layout knew deliveries, not notifications: each legacy send and claim becomes its own
 * notification (named by its delivery id), so it still counts and still blocks twins, and the
 * delivery itself is still recognised as the claimant on a redelivery.
 */
function foldLegacyRows(sql: SqlStorage, tables: readonly string[], state: RecipientState): void {
  if (tables.includes('sends')) {
    const rows = sql
      .exec<{ delivery_id: string; channel: string; type: string; sent_at: number; expires_at: number }>(
        'SELECT delivery_id, channel, type, sent_at, expires_at FROM sends',
      )
      .toArray();
    for (const { delivery_id, channel, type, sent_at, expires_at } of rows) {
      if (!isChannel(channel)) continue;
      state.sends.set(sendKey(delivery_id, channel), {
        notificationId: delivery_id,
        channel,
        type,
        sentAtMs: sent_at,
        retainedUntilMs: expires_at,
        deliveryIds: [delivery_id],
      });
    }
  }
  if (tables.includes('dedupe_claims')) {
    const rows = sql
      .exec<{ channel: string; type: string; dedupe_key: string; delivery_id: string; expires_at: number }>(
        'SELECT channel, type, dedupe_key, delivery_id, expires_at FROM dedupe_claims',
      )
      .toArray();
    for (const { channel, type, dedupe_key, delivery_id, expires_at } of rows) {
      if (!isChannel(channel)) continue;
      state.claims.set(claimKey(channel, type, dedupe_key), {
        channel,
        type,
        dedupeKey: dedupe_key,
        notificationId: delivery_id,
        expiresAtMs: expires_at,
        deliveryIds: [delivery_id],
      });
    }
  }
}
