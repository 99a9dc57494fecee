-- Moving a bucket between databases (npm run shards:move). In every database, `buckets_locked`
-- names the buckets whose rows it must not change: one being copied in, or one that moved away.
-- Triggers refuse any write to such a row (RAISE 'bucket_locked'), so a Worker still routing by
-- an older map can never change a row the copy already took; the move's own batches open the lock
-- for themselves (open = 1 at the start of the batch, 0 at its end: a batch is one transaction).
CREATE TABLE buckets_locked (
  bucket INTEGER PRIMARY KEY,
  reason TEXT NOT NULL,
  open INTEGER NOT NULL DEFAULT 0,
  since INTEGER NOT NULL
);

-- In the home database: buckets that moved (or are moving) away from where SHARD_MAP puts them.
-- phase: locked -> copied -> moved -> done. Until `moved`, `from_db` serves the bucket.
CREATE TABLE bucket_moves (
  bucket INTEGER PRIMARY KEY,
  from_db TEXT NOT NULL,
  to_db TEXT NOT NULL,
  phase TEXT NOT NULL,
  cursor TEXT,
  updated_at INTEGER NOT NULL
);

-- A contact's and a preference row's bucket (the hash of the user id, which SQL cannot compute):
-- written with every insert from now on, filled in for older rows before a move locks a bucket.
ALTER TABLE contacts ADD COLUMN bucket INTEGER;
ALTER TABLE notification_settings ADD COLUMN bucket INTEGER;

CREATE TRIGGER deliveries_locked_insert BEFORE INSERT ON deliveries
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(NEW.id, instr(NEW.id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(NEW.id, instr(NEW.id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER deliveries_locked_update BEFORE UPDATE ON deliveries
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.id, instr(OLD.id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.id, instr(OLD.id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER deliveries_locked_delete BEFORE DELETE ON deliveries
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.id, instr(OLD.id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.id, instr(OLD.id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER outbox_locked_insert BEFORE INSERT ON outbox
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(NEW.delivery_id, instr(NEW.delivery_id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(NEW.delivery_id, instr(NEW.delivery_id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER outbox_locked_update BEFORE UPDATE ON outbox
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.delivery_id, instr(OLD.delivery_id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.delivery_id, instr(OLD.delivery_id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER outbox_locked_delete BEFORE DELETE ON outbox
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.delivery_id, instr(OLD.delivery_id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.delivery_id, instr(OLD.delivery_id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER dead_letters_locked_insert BEFORE INSERT ON dead_letters
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(NEW.delivery_id, instr(NEW.delivery_id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(NEW.delivery_id, instr(NEW.delivery_id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER dead_letters_locked_update BEFORE UPDATE ON dead_letters
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.delivery_id, instr(OLD.delivery_id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.delivery_id, instr(OLD.delivery_id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER dead_letters_locked_delete BEFORE DELETE ON dead_letters
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = ((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.delivery_id, instr(OLD.delivery_id, '_') + 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(OLD.delivery_id, instr(OLD.delivery_id, '_') + 12, 1)) - 1) % 256 AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER contacts_locked_insert BEFORE INSERT ON contacts
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = NEW.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER contacts_locked_update BEFORE UPDATE ON contacts
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = OLD.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER contacts_locked_delete BEFORE DELETE ON contacts
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = OLD.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER notification_settings_locked_insert BEFORE INSERT ON notification_settings
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = NEW.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER notification_settings_locked_update BEFORE UPDATE ON notification_settings
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = OLD.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER notification_settings_locked_delete BEFORE DELETE ON notification_settings
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = OLD.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER contacts_locked_update_new BEFORE UPDATE OF bucket ON contacts
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = NEW.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

CREATE TRIGGER notification_settings_locked_update_new BEFORE UPDATE OF bucket ON notification_settings
WHEN EXISTS (SELECT 1 FROM buckets_locked WHERE bucket = NEW.bucket AND open = 0)
BEGIN SELECT RAISE(ABORT, 'bucket_locked'); END;

-- A notification to users in several buckets is written as one part per bucket; its first head
-- keeps the delivery ids in the order they were planned, so it reads back in that order.
ALTER TABLE deliveries ADD COLUMN plan TEXT;
