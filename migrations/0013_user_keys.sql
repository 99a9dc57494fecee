-- Each user's own key (src/lib/user-key.ts), in the user's database: the retention archive seals
-- the user's personal fields with it, and erasure destroys it, so every archived copy becomes
-- unreadable. `wrapped` is the key encrypted under DATA_ENCRYPTION_KEY; erasure sets it to NULL
-- and keeps the row (`erased_at`; `destroyed` = 1 when there was a key to destroy), so no key is
-- ever made again for an erased user id. The row moves with its bucket. WITHOUT ROWID: one row
-- written per key, not two (the primary key is the table).
CREATE TABLE user_keys (
  user_id TEXT PRIMARY KEY,
  bucket INTEGER NOT NULL,
  wrapped TEXT,
  created_at INTEGER NOT NULL,
  erased_at INTEGER,
  destroyed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TRIGGER user_keys_locked_insert BEFORE INSERT ON user_keys
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = NEW.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER user_keys_locked_update BEFORE UPDATE ON user_keys
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE (bucket = OLD.bucket OR bucket = NEW.bucket) AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER user_keys_locked_delete BEFORE DELETE ON user_keys
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = OLD.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;
