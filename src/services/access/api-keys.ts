import type { Env } from '../../config/env';
import { invalidField, notFound } from '../../domain/errors';
import { sha256Hex, timingSafeEqualStrings } from '../../lib/crypto';
import { toBase64Url } from '../../lib/encoding';
import { newId } from '../../lib/ids';
import { log } from '../../lib/log';
import type { ApiKeysRepo, StoredApiKey } from '../../storage/api-keys-repo';

/** Every key Herald issues starts with this, so a leaked one is recognisable (and scannable). */
export const KEY_PREFIX = 'hk_live_';
const KEY_BYTES = 32;
/** `hk_live_` + base64url of 32 bytes, unpadded: 43 characters. */
const KEY_PATTERN = /^hk_live_[A-Za-z0-9_-]{43}$/;
/** How much of a key is kept for display: `hk_live_` and 4 characters (24 of its 256 bits). */
const DISPLAY_PREFIX_LENGTH = 12;

/**
 * How long an isolate trusts a key it read from D1. Revoking a key through the API takes effect at
 * once in the isolate that handled it and within this time everywhere else.
 */
export const KEY_CACHE_TTL_MS = 30_000;
/** A key's `last_used_at` is written at most this often (per isolate), never per request. */
export const LAST_USED_INTERVAL_MS = 60_000;
/** Bounds the cache's memory whatever the number of keys in use. */
const KEY_CACHE_MAX = 1000;

/** Who is calling, as the API sees it after authentication. */
export interface ApiKeyPrincipal {
  /** The key's id; `admin` for the bootstrap ADMIN_API_KEY. */
  id: string;
  scopes: readonly string[];
  /** Notification types this key may send; null = any. */
  types: readonly string[] | null;
  /** Notification sources this key may send as; null = any. */
  sources: readonly string[] | null;
}

/** An API key as the API shows it: never the key, never its hash; times as ISO strings. */
export type ApiKeyView = Omit<
  StoredApiKey,
  'keyHash' | 'createdAt' | 'expiresAt' | 'revokedAt' | 'lastUsedAt'
> & {
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
};

export interface NewApiKey {
  name: string;
  scopes: string[];
  types?: string[];
  sources?: string[];
  /** ISO-8601; must be in the future. */
  expiresAt?: string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function view(key: StoredApiKey): ApiKeyView {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes,
    types: key.types,
    sources: key.sources,
    createdAt: new Date(key.createdAt).toISOString(),
    expiresAt: iso(key.expiresAt),
    revokedAt: iso(key.revokedAt),
    lastUsedAt: iso(key.lastUsedAt),
  };
}

const unique = (values: readonly string[]) => [...new Set(values)];

/**
 * Creates a key and returns it with its metadata. The key is in this answer only: D1 keeps its
 * SHA-256 (the primary key) and its first 12 characters.
 */
export async function createApiKey(
  keys: ApiKeysRepo,
  input: NewApiKey,
  nowMs: number,
): Promise<{ key: string; apiKey: ApiKeyView }> {
  const expiresAt = input.expiresAt === undefined ? null : Date.parse(input.expiresAt);
  if (expiresAt !== null && !(expiresAt > nowMs)) throw invalidField('expiresAt', 'must be in the future');
  const key = KEY_PREFIX + toBase64Url(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
  const stored: StoredApiKey = {
    keyHash: await sha256Hex(key),
    id: newId('key', nowMs),
    name: input.name,
    prefix: key.slice(0, DISPLAY_PREFIX_LENGTH),
    scopes: unique(input.scopes),
    types: input.types ? unique(input.types) : null,
    sources: input.sources ? unique(input.sources) : null,
    createdAt: nowMs,
    expiresAt,
    revokedAt: null,
    lastUsedAt: null,
  };
  await keys.insert(stored);
  log('info', 'api_key.created', { keyId: stored.id, scopes: stored.scopes.join(' ') });
  return { key, apiKey: view(stored) };
}

export async function listApiKeys(keys: ApiKeysRepo): Promise<ApiKeyView[]> {
  return (await keys.list()).map(view);
}

/** Revokes a key (idempotent). This isolate forgets it at once; others within KEY_CACHE_TTL_MS. */
export async function revokeApiKey(keys: ApiKeysRepo, id: string, nowMs: number): Promise<ApiKeyView> {
  const revoked = await keys.revoke(id, nowMs);
  if (!revoked) throw notFound(`API key ${id}`);
  cache.delete(revoked.keyHash);
  log('info', 'api_key.revoked', { keyId: id });
  return view(revoked);
}

/** Why a presented key was refused. */
export type KeyRefusal = 'invalid' | 'revoked' | 'expired';

export type KeyCheck = { ok: true; principal: ApiKeyPrincipal } | { ok: false; refusal: KeyRefusal };

interface CacheEntry {
  key: StoredApiKey;
  fetchedAt: number;
  /** The last use this isolate knows was recorded (read from D1 or written by it). */
  lastUsedAt: number | null;
}

/** Keys read from D1, by hash, per isolate (revoked ones too, so they stay cheap to refuse). */
const cache = new Map<string, CacheEntry>();

function remember(hash: string, entry: CacheEntry): void {
  cache.delete(hash);
  cache.set(hash, entry);
  // Map keeps insertion order: the first entry is the one read longest ago.
  while (cache.size > KEY_CACHE_MAX) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
}

const encoder = new TextEncoder();

/** Constant-time equality of two hex digests. */
function sameDigest(a: string, b: string): boolean {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  return left.byteLength === right.byteLength && crypto.subtle.timingSafeEqual(left, right);
}

/**
 * Checks a presented `hk_live_…` key: one SHA-256, then the per-isolate cache or one D1
 * primary-key probe. A valid key's last use is recorded through `waitUntil`, at most once a minute.
 * Strings that are not shaped like a key are refused without touching D1.
 */
export async function verifyApiKey(
  repo: ApiKeysRepo,
  presented: string,
  nowMs: number,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<KeyCheck> {
  if (!KEY_PATTERN.test(presented)) return { ok: false, refusal: 'invalid' };
  const hash = await sha256Hex(presented);
  let entry = cache.get(hash);
  if (!entry || nowMs - entry.fetchedAt >= KEY_CACHE_TTL_MS || nowMs < entry.fetchedAt) {
    const stored = await repo.findByHash(hash);
    if (!stored) {
      cache.delete(hash);
      return { ok: false, refusal: 'invalid' };
    }
    entry = { key: stored, fetchedAt: nowMs, lastUsedAt: stored.lastUsedAt };
    remember(hash, entry);
  }
  const { key } = entry;
  // The row was found by this hash; the constant-time comparison makes that explicit rather than
  // trusting the lookup's string equality.
  if (!sameDigest(hash, key.keyHash)) return { ok: false, refusal: 'invalid' };
  if (key.revokedAt !== null) return { ok: false, refusal: 'revoked' };
  if (key.expiresAt !== null && key.expiresAt <= nowMs) return { ok: false, refusal: 'expired' };

  if (entry.lastUsedAt === null || nowMs - entry.lastUsedAt >= LAST_USED_INTERVAL_MS) {
    entry.lastUsedAt = nowMs; // before the write, so concurrent requests here do not write too
    waitUntil(
      repo.touch(hash, nowMs, LAST_USED_INTERVAL_MS).catch((error: unknown) =>
        log('warn', 'api_key.touch_failed', {
          keyId: key.id,
          error: error instanceof Error ? error.message : 'unknown',
        }),
      ),
    );
  }
  return {
    ok: true,
    principal: { id: key.id, scopes: key.scopes, types: key.types, sources: key.sources },
  };
}

/** The bootstrap ADMIN_API_KEY as a principal: every scope, no restriction, rate-limited as `admin`. */
export const ADMIN_PRINCIPAL: ApiKeyPrincipal = Object.freeze({
  id: 'admin',
  scopes: Object.freeze(['admin']),
  types: null,
  sources: null,
});

/** True when `key` is the bootstrap admin key (compared in constant time). */
export async function isAdminKey(env: Pick<Env, 'ADMIN_API_KEY'>, key: string): Promise<boolean> {
  return (
    typeof env.ADMIN_API_KEY === 'string' &&
    env.ADMIN_API_KEY.length > 0 &&
    (await timingSafeEqualStrings(key, env.ADMIN_API_KEY))
  );
}
