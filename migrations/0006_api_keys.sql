-- API keys created by an admin (POST /v1/admin/api-keys). The key itself is never stored: the
-- primary key is the SHA-256 hex of it, so authenticating is one primary-key probe. `prefix` is the
-- key's first 12 characters, for people to recognise it in a list.
-- scopes, types and sources are JSON arrays; types/sources NULL = no restriction.
-- A revoked key keeps its row (revoked_at set) so it answers "revoked", not "invalid".
-- last_used_at is written at most once a minute per key and isolate, never per request.
CREATE TABLE api_keys (
  key_hash TEXT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  scopes TEXT NOT NULL,
  types TEXT,
  sources TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  last_used_at INTEGER
) WITHOUT ROWID;
