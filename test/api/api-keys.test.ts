import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { requireApiKey, sendRestrictionProblem } from '../../src/api/shared/auth';
import type { AppEnv } from '../../src/api/shared/types';
import type { Env } from '../../src/config/env';
import { sha256Hex } from '../../src/lib/crypto';
import type { ApiKeyView } from '../../src/services/access/api-keys';
import {
  createApiKey,
  KEY_CACHE_TTL_MS,
  LAST_USED_INTERVAL_MS,
  verifyApiKey,
} from '../../src/services/access/api-keys';
import { createServices } from '../../src/services/container';
import { ApiKeysRepo } from '../../src/storage/api-keys-repo';
import { ADMIN_KEY, api, json, testEnv } from '../helpers/api';
import { envWithCapturedQueues } from '../helpers/queues';
import { countAll } from '../helpers/shards';

interface ErrorBody {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}
type ApiKey = ApiKeyView;
interface CreatedApiKey extends ApiKey {
  key: string;
}

async function createKey(body: Record<string, unknown>, key: string = ADMIN_KEY): Promise<CreatedApiKey> {
  const res = await api('POST', '/v1/admin/api-keys', body, { key });
  expect(res.status).toBe(201);
  return json<CreatedApiKey>(res);
}

/** `at` is an ISO 8601 UTC time from `fromMs` to now. */
function expectTimeSince(at: string | null | undefined, fromMs: number) {
  expect(at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(Date.parse(at ?? '')).toBeGreaterThanOrEqual(fromMs);
  expect(Date.parse(at ?? '')).toBeLessThanOrEqual(Date.now());
}

async function storedRow(id: string) {
  return testEnv.DB.prepare('SELECT * FROM api_keys WHERE id = ?').bind(id).first<Record<string, unknown>>();
}

/** Collects what verifyApiKey hands to waitUntil, so a test can wait for the last-used write. */
function pending() {
  const promises: Promise<unknown>[] = [];
  return { waitUntil: (p: Promise<unknown>) => promises.push(p), settle: () => Promise.all(promises) };
}

describe('API keys: create, list, revoke', () => {
  it('creates a key shown once: hk_live_ + 32 random bytes, stored only as its SHA-256 and a prefix', async () => {
    const created = await createKey({
      name: 'billing service',
      scopes: ['notifications:send', 'notifications:read'],
      types: ['payment_reminder'],
    });
    expect(created.key).toMatch(/^hk_live_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({
      name: 'billing service',
      prefix: created.key.slice(0, 12),
      scopes: ['notifications:send', 'notifications:read'],
      types: ['payment_reminder'],
      sources: null,
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: null,
    });
    expect(created.id).toMatch(/^key_/);

    const row = await storedRow(created.id);
    expect(row?.key_hash).toBe(await sha256Hex(created.key));
    const secretPart = created.key.slice(12);
    expect(JSON.stringify(row)).not.toContain(secretPart);

    const listed = await json<{ data: ApiKey[] }>(await api('GET', '/v1/admin/api-keys'));
    const mine = listed.data.find((k) => k.id === created.id);
    expect(mine?.prefix).toBe(created.prefix);
    expect(JSON.stringify(listed)).not.toContain(secretPart);
    expect(JSON.stringify(listed)).not.toContain(String(row?.key_hash));
  });

  it('two keys never share their secret', async () => {
    const a = await createKey({ name: 'a', scopes: ['contacts:read'] });
    const b = await createKey({ name: 'b', scopes: ['contacts:read'] });
    expect(a.key).not.toBe(b.key);
    expect(a.id).not.toBe(b.id);
  });

  it('refuses bad input with a 422 naming the field, and writes nothing', async () => {
    const before = await testEnv.DB.prepare('SELECT count(*) AS n FROM api_keys').first<{ n: number }>();
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'x', scopes: ['contacts:delete'] }, 'scopes[0]'],
      [{ name: 'x', scopes: [] }, 'scopes'],
      [{ name: '', scopes: ['admin'] }, 'name'],
      [{ name: 'x', scopes: ['admin'], types: ['Not A Type'] }, 'types[0]'],
      [{ name: 'x', scopes: ['admin'], expiresAt: 'tomorrow' }, 'expiresAt'],
      [{ name: 'x', scopes: ['admin'], expiresAt: new Date(Date.now() - 1000).toISOString() }, 'expiresAt'],
      [{ name: 'x', scopes: ['admin'], key: 'hk_live_mine' }, '(body)'],
    ];
    for (const [body, field] of cases) {
      const res = await api('POST', '/v1/admin/api-keys', body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      const error = await json<ErrorBody>(res);
      expect(error.error.code).toBe('validation_error');
      expect(error.error.details?.[0]?.field, JSON.stringify(body)).toBe(field);
    }
    const after = await testEnv.DB.prepare('SELECT count(*) AS n FROM api_keys').first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
  });

  it('a revoked key answers 401 "revoked" at once; revoking is idempotent; an unknown id is 404', async () => {
    const created = await createKey({ name: 'to revoke', scopes: ['notifications:read'] });
    expect((await api('GET', '/v1/notifications', undefined, { key: created.key })).status).toBe(200);

    const revokedFrom = Date.now();
    const revoked = await api('DELETE', `/v1/admin/api-keys/${created.id}`);
    expect(revoked.status).toBe(200);
    const body = await json<ApiKey>(revoked);
    expectTimeSince(body.revokedAt, revokedFrom);
    expect(body).not.toHaveProperty('key');

    const refused = await api('GET', '/v1/notifications', undefined, { key: created.key });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('WWW-Authenticate')).toContain('error="invalid_token"');
    expect(await json<ErrorBody>(refused)).toEqual({
      error: { code: 'unauthorized', message: 'API key revoked' },
    });

    const again = await json<ApiKey>(await api('DELETE', `/v1/admin/api-keys/${created.id}`));
    expect(again.revokedAt).toBe(body.revokedAt);
    // The row stays, so "revoked" can be said.
    expect(await storedRow(created.id)).toMatchObject({
      id: created.id,
      revoked_at: Date.parse(body.revokedAt ?? ''),
    });

    const missing = await api('DELETE', '/v1/admin/api-keys/key_nope');
    expect(missing.status).toBe(404);
    expect((await json<ErrorBody>(missing)).error.code).toBe('not_found');
  });

  it('an expired key answers 401 "expired"', async () => {
    const past = Date.now() - 60_000;
    const { key } = await createApiKey(
      new ApiKeysRepo(testEnv.DB),
      { name: 'expired', scopes: ['admin'], expiresAt: new Date(past + 1000).toISOString() },
      past,
    );
    const res = await api('GET', '/v1/notifications', undefined, { key });
    expect(res.status).toBe(401);
    expect((await json<ErrorBody>(res)).error.message).toBe('API key expired');
  });

  it('a key with an unexpired expiresAt works', async () => {
    const created = await createKey({
      name: 'expires later',
      scopes: ['notifications:read'],
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    expect((await api('GET', '/v1/notifications', undefined, { key: created.key })).status).toBe(200);
  });

  it('only a key with the admin scope manages keys, and an admin-scoped key holds every scope', async () => {
    const writer = await createKey({ name: 'writer', scopes: ['contacts:write', 'contacts:read'] });
    const res = await api(
      'POST',
      '/v1/admin/api-keys',
      { name: 'mine', scopes: ['admin'] },
      { key: writer.key },
    );
    expect(res.status).toBe(403);
    expect(await json<ErrorBody>(res)).toEqual({
      error: { code: 'forbidden', message: 'this key lacks the scope admin' },
    });

    const admin = await createKey({ name: 'second admin', scopes: ['admin'] });
    const minted = await createKey({ name: 'minted', scopes: ['contacts:read'] }, admin.key);
    expect(minted.scopes).toEqual(['contacts:read']);
    expect((await api('GET', '/v1/notifications', undefined, { key: admin.key })).status).toBe(200);
    expect((await api('GET', '/v1/templates', undefined, { key: admin.key })).status).toBe(200);
  });

  it('a key without the scope gets 403 in the envelope; the 403 comes before validation', async () => {
    const reader = await createKey({ name: 'reader', scopes: ['contacts:read'] });
    const res = await api('PUT', '/v1/contacts/user_403', { email: 'not an email' }, { key: reader.key });
    expect(res.status).toBe(403);
    expect(await json<ErrorBody>(res)).toEqual({
      error: { code: 'forbidden', message: 'this key lacks the scope contacts:write' },
    });
    expect((await api('GET', '/v1/contacts/user_403', undefined, { key: reader.key })).status).toBe(404);
  });

  it('an unknown /v1 route with a valid key is a 404, not a 403', async () => {
    const reader = await createKey({ name: 'reader', scopes: ['contacts:read'] });
    for (const key of [reader.key, ADMIN_KEY]) {
      const res = await api('GET', '/v1/nothing-here', undefined, { key });
      expect(res.status).toBe(404);
      expect((await json<ErrorBody>(res)).error.code).toBe('not_found');
    }
  });

  it('strings that are not shaped like a key are refused without a D1 read', async () => {
    const db = new Proxy(testEnv.DB, {
      get(target, prop) {
        if (prop === 'prepare') throw new Error('D1 must not be read');
        return Reflect.get(target, prop);
      },
    });
    const env = { ...testEnv, DB: db } as Env;
    for (const key of ['hk_live_short', `sk_live_${'a'.repeat(43)}`, `hk_live_${'!'.repeat(43)}`]) {
      const res = await api('GET', '/v1/notifications', undefined, { key, env });
      expect(res.status).toBe(401);
      expect((await json<ErrorBody>(res)).error.message).toBe('invalid API key');
    }
  });
});

describe('API keys: cache and last use', () => {
  it('a revocation made by another isolate takes effect within the 30 s cache', async () => {
    const now = Date.now();
    const { key, apiKey } = await createApiKey(
      new ApiKeysRepo(testEnv.DB),
      { name: 'cached', scopes: ['admin'] },
      now,
    );
    const { waitUntil, settle } = pending();
    expect((await verifyApiKey(new ApiKeysRepo(testEnv.DB), key, now, waitUntil)).ok).toBe(true);
    // Another isolate revokes: the row changes, this isolate's cache does not hear of it.
    await new ApiKeysRepo(testEnv.DB).revoke(apiKey.id, now);
    expect((await verifyApiKey(new ApiKeysRepo(testEnv.DB), key, now + 1000, waitUntil)).ok).toBe(true);
    expect(await verifyApiKey(new ApiKeysRepo(testEnv.DB), key, now + KEY_CACHE_TTL_MS, waitUntil)).toEqual({
      ok: false,
      refusal: 'revoked',
    });
    await settle();
  });

  it('records the last use at most once a minute, off the request path', async () => {
    const now = Date.now();
    const { key, apiKey } = await createApiKey(
      new ApiKeysRepo(testEnv.DB),
      { name: 'touched', scopes: ['admin'] },
      now,
    );
    const lastUsed = async () => (await storedRow(apiKey.id))?.last_used_at;

    const first = pending();
    await verifyApiKey(new ApiKeysRepo(testEnv.DB), key, now, first.waitUntil);
    await first.settle();
    expect(await lastUsed()).toBe(now);

    const soon = pending();
    await verifyApiKey(new ApiKeysRepo(testEnv.DB), key, now + 20_000, soon.waitUntil);
    await verifyApiKey(new ApiKeysRepo(testEnv.DB), key, now + 40_000, soon.waitUntil);
    await soon.settle();
    expect(await lastUsed()).toBe(now);

    const later = pending();
    await verifyApiKey(new ApiKeysRepo(testEnv.DB), key, now + LAST_USED_INTERVAL_MS + 1, later.waitUntil);
    await later.settle();
    expect(await lastUsed()).toBe(now + LAST_USED_INTERVAL_MS + 1);
  });

  it('a request through the API records the last use, shown in the list', async () => {
    const created = await createKey({ name: 'used', scopes: ['notifications:read'] });
    expect(created.lastUsedAt).toBeNull();
    const usedFrom = Date.now();
    expect((await api('GET', '/v1/notifications', undefined, { key: created.key })).status).toBe(200);
    const listed = await json<{ data: ApiKey[] }>(await api('GET', '/v1/admin/api-keys'));
    expectTimeSince(listed.data.find((k) => k.id === created.id)?.lastUsedAt, usedFrom);
  });
});

/** A Rate Limiting binding that allows `allowed` calls per key, recording every key it saw. */
class FakeLimiter {
  readonly keys: string[] = [];
  broken = false;
  constructor(private readonly allowed: number) {}
  async limit({ key }: { key: string }): Promise<{ success: boolean }> {
    if (this.broken) throw new Error('limiter down');
    this.keys.push(key);
    return { success: this.keys.filter((k) => k === key).length <= this.allowed };
  }
}

function limitedEnv(limiter: FakeLimiter, environment = 'production'): Env {
  return { ...testEnv, API_RATE_LIMITER: limiter, ENVIRONMENT: environment } as unknown as Env;
}

describe('per-key rate limit', () => {
  it('over the limit is a 429 in the envelope with Retry-After: 60, counted per key id', async () => {
    const limiter = new FakeLimiter(2);
    const env = limitedEnv(limiter);
    const a = await createKey({ name: 'a', scopes: ['notifications:read'] });
    const b = await createKey({ name: 'b', scopes: ['notifications:read'] });
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await api('GET', '/v1/notifications', undefined, { key: a.key, env })).status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    const limited = await api('GET', '/v1/notifications', undefined, { key: a.key, env });
    expect(limited.headers.get('Retry-After')).toBe('60');
    expect((await json<ErrorBody>(limited)).error.code).toBe('rate_limited');
    // Another key has its own budget.
    expect((await api('GET', '/v1/notifications', undefined, { key: b.key, env })).status).toBe(200);
    expect(limiter.keys).toContain(a.id);
    expect(limiter.keys).toContain(b.id);
    expect(limiter.keys.join(' ')).not.toContain('hk_live_');
  });

  it('the admin key is limited as "admin"; unauthenticated requests never reach the limiter', async () => {
    const limiter = new FakeLimiter(1);
    const env = limitedEnv(limiter);
    expect((await api('GET', '/v1/notifications', undefined, { env })).status).toBe(200);
    expect((await api('GET', '/v1/notifications', undefined, { env })).status).toBe(429);
    expect((await api('GET', '/v1/notifications', undefined, { key: 'wrong', env })).status).toBe(401);
    expect(limiter.keys).toEqual(['admin', 'admin']);
  });

  it('no binding, a development or test environment, or a failing limiter: no limit', async () => {
    const { API_RATE_LIMITER: _binding, ...withoutBinding } = testEnv;
    for (const env of [
      { ...withoutBinding, ENVIRONMENT: 'production' } as Env,
      limitedEnv(new FakeLimiter(0), 'development'),
      limitedEnv(new FakeLimiter(0), 'test'),
      limitedEnv(Object.assign(new FakeLimiter(0), { broken: true })),
    ]) {
      expect((await api('GET', '/v1/notifications', undefined, { env })).status).toBe(200);
    }
  });

  it('wrangler.toml gives the tests a working Rate Limiting binding', async () => {
    const binding = testEnv.API_RATE_LIMITER;
    expect(typeof binding?.limit).toBe('function');
    expect(await binding?.limit({ key: `probe-${crypto.randomUUID()}` })).toEqual({ success: true });
  });
});

describe('scopes fail closed', () => {
  /** A bare app with the real middleware and a route that src/api/scopes.ts does not name. */
  async function callUnlisted(key: string, path = '/v1/unlisted') {
    const app = new Hono<AppEnv>();
    app.use('*', async (c, next) => {
      c.set('services', createServices(c.env));
      await next();
    });
    app.use('/v1/*', requireApiKey);
    app.get('/v1/unlisted', (c) => c.json({ ok: true }));
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request(`https://herald.test${path}`, { headers: { Authorization: `Bearer ${key}` } }),
      testEnv,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  }

  it('a route missing from the scope table needs admin: every other scope is refused', async () => {
    const everyOther = await createKey({
      name: 'all but admin',
      scopes: [
        'notifications:send',
        'notifications:read',
        'contacts:read',
        'contacts:write',
        'templates:write',
      ],
    });
    const refused = await callUnlisted(everyOther.key);
    expect(refused.status).toBe(403);
    expect(await json<ErrorBody>(refused)).toEqual({
      error: { code: 'forbidden', message: 'this key lacks the scope admin' },
    });
    expect((await callUnlisted(ADMIN_KEY)).status).toBe(200);
    expect((await callUnlisted(everyOther.key, '/v1/elsewhere')).status).toBe(404);
  });
});

describe('send restrictions', () => {
  it('sendRestrictionProblem names the first notification a key may not send', () => {
    const typed = { types: ['order_shipped'], sources: null };
    expect(sendRestrictionProblem(typed, [{ type: 'order_shipped' }])).toBeNull();
    expect(sendRestrictionProblem(typed, [{ type: 'payment_reminder' }])).toEqual({
      field: 'type',
      message: 'this key may not send notifications of type "payment_reminder"',
    });
    expect(
      sendRestrictionProblem(typed, [{ type: 'order_shipped' }, { type: 'security_alert' }], 'notifications'),
    ).toMatchObject({ field: 'notifications[1].type' });

    const sourced = { types: null, sources: ['com.example.billing'] };
    expect(sendRestrictionProblem(sourced, [{ type: 'x', source: 'com.example.billing' }])).toBeNull();
    expect(sendRestrictionProblem(sourced, [{ type: 'x', source: 'com.example.shop' }])).toMatchObject({
      field: 'source',
    });
    expect(sendRestrictionProblem(sourced, [{ type: 'x' }])?.message).toContain('must name its source');
    expect(sendRestrictionProblem({ types: null, sources: null }, [{ type: 'anything' }])).toBeNull();
  });

  // Needs `assertSendAllowed(c, inputs)` in POST /v1/notifications and
  // `assertSendAllowed(c, notifications, 'notifications')` in POST /v1/notifications/batch.
  it('through the API: a key restricted to order_shipped cannot send payment_reminder (403, nothing written)', async () => {
    const { env, queues } = envWithCapturedQueues();
    const shipping = await createKey({
      name: 'shop',
      scopes: ['notifications:send'],
      types: ['order_shipped'],
      sources: ['com.example.shop'],
    });
    const recipients = [{ email: 'ada@example.com' }];
    const asShop = (path: string, body: unknown) => api('POST', path, body, { key: shipping.key, env });
    const shipped = (orderId: string, source = 'com.example.shop') => ({
      type: 'order_shipped',
      source,
      recipients,
      data: { order_id: orderId },
    });
    const id = `restricted-${crypto.randomUUID()}`;
    const refused = await asShop('/v1/notifications', {
      id,
      type: 'payment_reminder',
      source: 'com.example.shop',
      recipients,
      data: { amount: '1' },
    });
    expect(refused.status).toBe(403);
    expect(await json<ErrorBody>(refused)).toMatchObject({
      error: { code: 'forbidden', details: [{ field: 'type' }] },
    });
    expect(
      await testEnv.DB.prepare('SELECT key FROM notification_keys WHERE key = ?').bind(id).first(),
    ).toBeNull();
    expect(await countAll('SELECT count(*) AS n FROM deliveries WHERE notification_id = ?', id)).toBe(0);
    expect(queues.email.sent).toHaveLength(0);

    const wrongSource = await asShop('/v1/notifications', shipped('A-1', 'com.example.billing'));
    expect(wrongSource.status).toBe(403);

    const batch = await asShop('/v1/notifications/batch', {
      notifications: [
        shipped('A-2'),
        { type: 'security_alert', source: 'com.example.shop', recipients, data: {} },
      ],
    });
    expect(batch.status).toBe(403);
    expect((await json<ErrorBody>(batch)).error.details?.[0]?.field).toBe('notifications[1].type');
    expect(queues.email.sent).toHaveLength(0);

    const allowed = await asShop('/v1/notifications', shipped('A-3'));
    expect(allowed.status).toBe(202);
  });
});
