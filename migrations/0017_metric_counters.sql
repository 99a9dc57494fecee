-- Monotonic counters for Prometheus (GET /metrics: herald_deliveries_total,
-- herald_notifications_accepted_total, herald_provider_errors_total). In every database: each
-- count is written in the same batch (one transaction) as the change it counts, in the database
-- that change is in, and /metrics adds them up over every database. Retention and bucket moves
-- never touch this table, so the sums only ever grow.
--
-- One row per notification type, its counts as one JSON object ({"deliveries/email/sent": 12,
-- "accepted": 3, "provider_errors/email/resend/retryable": 1, ...}): a write adds to every count
-- it changes of a type in one row written (D1 bills rows written), where a row per label set would
-- write one per status and family (created, queued and accepted for one notification: three).
-- WITHOUT ROWID: the primary key is the table, no index row besides.
CREATE TABLE metric_counters (
  type TEXT PRIMARY KEY,
  counts TEXT NOT NULL
) WITHOUT ROWID;
