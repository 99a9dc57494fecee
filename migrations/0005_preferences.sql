-- The seed's notification_settings: one row per user, read once per queue batch.
-- channels: { "<channel>": false } turns a channel off for every type.
-- types: { "<type>": { "<channel>" | "all": boolean } } opts in or out per type.
-- quiet_hours: { "start": "22:00", "end": "07:00" } in the contact's time zone, or NULL.
CREATE TABLE notification_settings (
  user_id TEXT PRIMARY KEY,
  channels TEXT NOT NULL DEFAULT '{}',
  types TEXT NOT NULL DEFAULT '{}',
  quiet_hours TEXT,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
