-- The sandbox's outbox is looked up by delivery id when it records a send (a resend on a channel
-- whose providers take an idempotency key is absorbed). Local development only: production
-- providers write no outbox rows.
CREATE INDEX outbox_by_delivery ON outbox (delivery_id);
