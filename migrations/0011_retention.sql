-- Retention: deliveries created before `purged_before` were archived to R2 and removed from D1, so
-- an id accepted before it answers 404 `expired` rather than `not_found`. One row.
CREATE TABLE retention (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  purged_before INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
