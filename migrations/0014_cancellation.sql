-- A producer's cancelKey (DELETE /v1/notifications?cancelKey=), on each head row of a notification.
-- A partial index: only notifications that carry a key pay its index row.
ALTER TABLE deliveries ADD COLUMN cancel_key TEXT;
CREATE INDEX deliveries_cancel_key ON deliveries (cancel_key) WHERE cancel_key IS NOT NULL;
