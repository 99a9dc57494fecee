-- The sandbox's outbox keeps every send (a resend is no longer absorbed), so a duplicate can always
-- be seen. A send of a delivery already captured on a channel whose real providers take an
-- idempotency key (Resend Idempotency-Key, Standard Webhooks webhook-id, APNs apns-collapse-id,
-- Web Push Topic: the delivery id) is marked 1: a real provider would have dropped it.
ALTER TABLE outbox ADD COLUMN idempotent_repeat INTEGER NOT NULL DEFAULT 0;
