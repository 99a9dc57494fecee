-- Herald's core schema. Append-only: later changes go in new migration files.

-- The seed's contacts table. JSON columns hold arrays (device tokens, external channels).
CREATE TABLE contacts (
  user_id TEXT PRIMARY KEY,
  email TEXT,
  phone TEXT,
  device_tokens TEXT NOT NULL DEFAULT '[]',
  external_channels TEXT NOT NULL DEFAULT '[]',
  locale TEXT,
  timezone TEXT,
  sms_opted_out INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per accepted event. `id` is the producer's idempotency key (or a generated one).
CREATE TABLE notifications (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  source TEXT,
  priority TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '{}',
  channels TEXT,
  send_at INTEGER,
  dedupe_key TEXT,
  request_hash TEXT NOT NULL,
  delivery_ids TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per (recipient, channel, address). The status history lives in `history` (a JSON
-- array) so that a status change is one row written, not two.
CREATE TABLE deliveries (
  id TEXT PRIMARY KEY,
  notification_id TEXT NOT NULL,
  user_id TEXT,
  channel TEXT NOT NULL,
  address TEXT,
  status TEXT NOT NULL,
  reason TEXT,
  provider TEXT,
  provider_message_id TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  template_version TEXT,
  history TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  sent_at INTEGER
) WITHOUT ROWID;

CREATE INDEX deliveries_by_user ON deliveries (user_id, created_at);

-- What the sandbox provider would have sent: the exact rendered message per delivery attempt.
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL,
  notification_id TEXT NOT NULL,
  user_id TEXT,
  channel TEXT NOT NULL,
  address TEXT NOT NULL,
  message TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE INDEX outbox_by_user ON outbox (user_id, channel);
