-- Topics: named groups of users a notification can be sent to ({ "topic": key } recipients).
-- A topic is cross-user data: its row lives in the home database. WITHOUT ROWID: one row per topic.
CREATE TABLE topics (
  key TEXT PRIMARY KEY,
  name TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Who follows a topic: one row per (topic, user), in the user's database (it moves with the
-- bucket and erasure finds it there). `sub_key` is `<topic key> <user id>` (a space: no key or
-- user id may contain one, and it sorts before every character they may contain), so a topic's
-- subscribers are one primary-key range in user-id order: the expansion reads them page by page
-- without sorting. The user-id index is for erasure.
CREATE TABLE topic_subscriptions (
  sub_key TEXT PRIMARY KEY,
  topic_key TEXT NOT NULL,
  user_id TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX topic_subscriptions_user ON topic_subscriptions (user_id);

CREATE TRIGGER topic_subscriptions_locked_insert BEFORE INSERT ON topic_subscriptions
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = NEW.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER topic_subscriptions_locked_update BEFORE UPDATE ON topic_subscriptions
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE (bucket = OLD.bucket OR bucket = NEW.bucket) AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER topic_subscriptions_locked_delete BEFORE DELETE ON topic_subscriptions
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = OLD.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

-- A notification sent to topics, in the home database, written in the same commit as its
-- accepted rows: what the expansion needs (the notification's fields, its data sealed under the
-- deployment key and bound to its id, the topics with their exclusions, the users it must skip:
-- the actor and the users named directly), and what answers for it before any subscriber's row
-- exists. `canceled_at` stops the expansion. Retention removes it with the notification's rows.
CREATE TABLE topic_sends (
  notification_id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  request_hash TEXT NOT NULL,
  type TEXT NOT NULL,
  source TEXT,
  priority TEXT NOT NULL,
  data TEXT NOT NULL,
  channels TEXT,
  send_at INTEGER,
  dedupe_key TEXT,
  cancel_key TEXT,
  topics TEXT NOT NULL,
  skip TEXT NOT NULL,
  canceled_at INTEGER,
  -- The database layout (`ShardRouter.layout`) the expansion runs under; a move meanwhile restarts it.
  layout TEXT NOT NULL
) WITHOUT ROWID;
