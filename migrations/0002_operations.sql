-- Operations: provider switches, alert digests, dead letters.

-- A provider switched off by an operator (PUT /v1/admin/providers/{name}); absent = enabled.
CREATE TABLE provider_settings (
  name TEXT PRIMARY KEY,
  enabled INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Alerts waiting for the once-a-minute digest to ALERT_WEBHOOK_URL. One row per alert key, so a
-- storm of the same problem is one row with a count, and one message.
CREATE TABLE alerts (
  key TEXT PRIMARY KEY,
  message TEXT NOT NULL,
  count INTEGER NOT NULL,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Deliveries that reached a dead-letter queue, replayable until replayed.
CREATE TABLE dead_letters (
  delivery_id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  reason TEXT,
  created_at INTEGER NOT NULL,
  replayed_at INTEGER
) WITHOUT ROWID;

CREATE INDEX dead_letters_by_channel ON dead_letters (channel, created_at) WHERE replayed_at IS NULL;
