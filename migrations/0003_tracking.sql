-- Tracking, provider callbacks and the suppression list.

-- Addresses Herald must not send to again on a channel: hard bounces, complaints, unsubscribes.
-- `address_hash` is a keyed HMAC-SHA256 of the normalised address (see services/suppressions.ts),
-- never the address itself. The primary key is the table (WITHOUT ROWID): one row written per
-- suppression, and a lookup is a primary-key probe.
CREATE TABLE suppressions (
  channel TEXT NOT NULL,
  address_hash TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (channel, address_hash)
) WITHOUT ROWID;

-- Replay keys of signed provider callbacks (Mailgun tokens, Svix ids, SendGrid signatures, Vonage
-- nonces), kept until their timestamp could no longer be accepted anyway. No index on
-- `expires_at`: expired rows are reclaimed in small batches or overwritten when a key recurs.
CREATE TABLE callback_replays (
  key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
