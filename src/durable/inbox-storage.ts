import {
  type ArchivedFilter,
  DEFAULT_INBOX_MAX_ITEMS,
  type FeedStatus,
  type InboxButton,
  type InboxCounts,
  type InboxFrame,
  type InboxItem,
  type ItemState,
  itemIdOf,
  type NewInboxItem,
} from '../domain/inbox';

/**
 * The inbox's SQLite (one Durable Object per user): its items, and the log of recent frames a
 * reconnecting socket replays. The newest frame carries the sequence number and the counts after
 * it, so they change in the same transaction as the items without a row of their own.
 *
 * Rows written per append: the item (WITHOUT ROWID: its primary key is the table, and an item id
 * is its delivery id, time-ordered, so newest-first needs no index) and its frame, plus the frame
 * that falls out of the log once it is full. `config` is written only when INBOX_MAX_ITEMS changes.
 */
export function createSchema(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    type TEXT NOT NULL,
    category TEXT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    url TEXT,
    avatar TEXT,
    actions TEXT NOT NULL,
    data TEXT,
    created_at INTEGER NOT NULL,
    seen_at INTEGER,
    read_at INTEGER,
    archived_at INTEGER,
    clicked_at INTEGER
  ) WITHOUT ROWID`);
  // `size`: how many items (archived ones too) the inbox held after the frame, for trimming
  // without counting the items.
  sql.exec(
    'CREATE TABLE IF NOT EXISTS frames (seq INTEGER PRIMARY KEY, frame TEXT NOT NULL, size INTEGER NOT NULL)',
  );
  sql.exec(
    'CREATE TABLE IF NOT EXISTS config (id INTEGER PRIMARY KEY CHECK (id = 1), max_items INTEGER NOT NULL)',
  );
}

export interface ItemRow extends Record<string, SqlStorageValue> {
  id: string;
  delivery_id: string;
  notification_id: string;
  type: string;
  category: string | null;
  title: string;
  body: string;
  url: string | null;
  avatar: string | null;
  actions: string;
  data: string | null;
  created_at: number;
  seen_at: number | null;
  read_at: number | null;
  archived_at: number | null;
  clicked_at: number | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toItem(row: ItemRow): InboxItem {
  return {
    id: row.id,
    deliveryId: row.delivery_id,
    notificationId: row.notification_id,
    type: row.type,
    category: row.category,
    title: row.title,
    body: row.body,
    url: row.url,
    avatar: row.avatar,
    actions: JSON.parse(row.actions) as InboxButton[],
    data: row.data === null ? null : (JSON.parse(row.data) as unknown),
    createdAt: new Date(row.created_at).toISOString(),
    seenAt: iso(row.seen_at),
    readAt: iso(row.read_at),
    archivedAt: iso(row.archived_at),
  };
}

export function stateOf(row: ItemRow): ItemState {
  return { seenAt: row.seen_at, readAt: row.read_at, archivedAt: row.archived_at, clickedAt: row.clicked_at };
}

export function insertItem(sql: SqlStorage, item: NewInboxItem): ItemRow {
  const row: ItemRow = {
    id: itemIdOf(item.deliveryId),
    delivery_id: item.deliveryId,
    notification_id: item.notificationId,
    type: item.type,
    category: item.category,
    title: item.title,
    body: item.body,
    url: item.url,
    avatar: item.avatar,
    actions: JSON.stringify(item.actions),
    data: item.data === undefined || item.data === null ? null : JSON.stringify(item.data),
    created_at: item.createdAt,
    seen_at: null,
    read_at: null,
    archived_at: null,
    clicked_at: null,
  };
  sql.exec(
    `INSERT INTO items (id, delivery_id, notification_id, type, category, title, body, url, avatar, actions, data, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    row.id,
    row.delivery_id,
    row.notification_id,
    row.type,
    row.category,
    row.title,
    row.body,
    row.url,
    row.avatar,
    row.actions,
    row.data,
    row.created_at,
  );
  return row;
}

export function itemByDelivery(sql: SqlStorage, deliveryId: string): ItemRow | null {
  return sql.exec<ItemRow>('SELECT * FROM items WHERE id = ?', itemIdOf(deliveryId)).toArray()[0] ?? null;
}

export function itemsById(sql: SqlStorage, ids: readonly string[]): ItemRow[] {
  if (ids.length === 0) return [];
  return sql
    .exec<ItemRow>('SELECT * FROM items WHERE id IN (SELECT value FROM json_each(?))', JSON.stringify(ids))
    .toArray();
}

/** Every item an action could change when applied to all (archive/unarchive and reads go over all). */
export function allItems(sql: SqlStorage): ItemRow[] {
  return sql.exec<ItemRow>('SELECT * FROM items ORDER BY id DESC').toArray();
}

export function updateState(sql: SqlStorage, id: string, state: ItemState): void {
  sql.exec(
    'UPDATE items SET seen_at = ?, read_at = ?, archived_at = ?, clicked_at = ? WHERE id = ?',
    state.seenAt,
    state.readAt,
    state.archivedAt,
    state.clickedAt,
    id,
  );
}

export function deleteItems(sql: SqlStorage, ids: readonly string[]): void {
  sql.exec('DELETE FROM items WHERE id IN (SELECT value FROM json_each(?))', JSON.stringify(ids));
}

/** The `count` oldest items (reading only those). */
export function oldestItems(sql: SqlStorage, count: number): ItemRow[] {
  if (count <= 0) return [];
  return sql.exec<ItemRow>('SELECT * FROM items ORDER BY id ASC LIMIT ?', count).toArray();
}

export interface Meta {
  seq: number;
  counts: InboxCounts;
  /** Items held, archived ones included. */
  size: number;
  /** Items kept (the Worker's INBOX_MAX_ITEMS, as of the last append); twice as many frames. */
  maxItems: number;
}

/** The sequence number and counts of the newest frame (none yet: 0 and nothing), and the config. */
export function readMeta(sql: SqlStorage): Meta {
  const newest = sql
    .exec<{ seq: number; frame: string; size: number }>(
      'SELECT seq, frame, size FROM frames ORDER BY seq DESC LIMIT 1',
    )
    .toArray()[0];
  const config = sql.exec<{ max_items: number }>('SELECT max_items FROM config WHERE id = 1').toArray()[0];
  return {
    seq: newest?.seq ?? 0,
    counts: newest ? (JSON.parse(newest.frame) as InboxFrame).counts : { total: 0, unread: 0, unseen: 0 },
    size: newest?.size ?? 0,
    maxItems: config?.max_items ?? DEFAULT_INBOX_MAX_ITEMS,
  };
}

/** Stores INBOX_MAX_ITEMS when it changed (the counts and seq travel in the frames). */
export function writeConfig(sql: SqlStorage, maxItems: number): void {
  sql.exec(
    `INSERT INTO config (id, max_items) VALUES (1, ?)
     ON CONFLICT (id) DO UPDATE SET max_items = excluded.max_items WHERE max_items != excluded.max_items`,
    maxItems,
  );
}

export interface FeedQuery {
  status: FeedStatus;
  archived: ArchivedFilter;
  category?: string;
  limit: number;
  /** Exclusive: items older than this one (ids are time-ordered). */
  before?: string;
}

export function feedRows(sql: SqlStorage, query: FeedQuery): ItemRow[] {
  const where: string[] = [];
  const params: SqlStorageValue[] = [];
  if (query.status === 'unread') where.push('read_at IS NULL');
  if (query.status === 'unseen') where.push('seen_at IS NULL');
  if (query.status === 'read') where.push('read_at IS NOT NULL');
  if (query.archived === 'exclude') where.push('archived_at IS NULL');
  if (query.archived === 'only') where.push('archived_at IS NOT NULL');
  if (query.category !== undefined) {
    where.push('category = ?');
    params.push(query.category);
  }
  if (query.before) {
    where.push('id < ?');
    params.push(query.before);
  }
  return sql
    .exec<ItemRow>(
      `SELECT * FROM items ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id DESC LIMIT ?`,
      ...params,
      query.limit,
    )
    .toArray();
}

export function appendFrame(sql: SqlStorage, seq: number, frame: string, size: number, keep: number): void {
  sql.exec('INSERT INTO frames (seq, frame, size) VALUES (?, ?, ?)', seq, frame, size);
  sql.exec('DELETE FROM frames WHERE seq <= ?', seq - keep);
}

/** The frames after `since`, or null when some of them are no longer kept. */
export function framesAfter(sql: SqlStorage, since: number, current: number): string[] | null {
  if (since >= current) return [];
  const rows = sql
    .exec<{ seq: number; frame: string }>('SELECT seq, frame FROM frames WHERE seq > ? ORDER BY seq', since)
    .toArray();
  if (rows.length !== current - since || rows[0]?.seq !== since + 1) return null;
  return rows.map((row) => row.frame);
}
