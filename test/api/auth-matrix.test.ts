import { beforeAll, describe, expect, it } from 'vitest';
import { isDeclared, ROUTE_SCOPES, requiredScope, SCOPES, type Scope } from '../../src/api/shared/scopes';
import { createApiKey } from '../../src/services/access/api-keys';
import { ApiKeysRepo } from '../../src/storage/api-keys-repo';
import { api, json, testEnv } from '../helpers/api';

interface OpenApiDoc {
  paths: Record<string, Record<string, unknown>>;
}
interface Route {
  method: string;
  /** As documented: `/v1/contacts/{userId}`. */
  path: string;
}

/**
 * Routes that take no API key: provider callbacks (signed), tracking and unsubscribe links
 * (tokens), the inbox's client routes (an end user's inbox token; test/inbox covers them).
 */
const KEYLESS = [
  /^\/v1\/webhooks\//,
  /^\/t\//,
  /^\/u\//,
  /^\/healthz$/,
  /^\/openapi\.json$/,
  /^\/v1\/inbox\/(feed|counts|items)/,
  /^\/inbox\.js$/,
];

/** Every route in GET /openapi.json that needs a key, so a new route is covered the day it lands. */
async function keyedRoutes(): Promise<Route[]> {
  const doc = await json<OpenApiDoc>(await api('GET', '/openapi.json', undefined, { key: null }));
  return Object.entries(doc.paths)
    .filter(([path]) => !KEYLESS.some((pattern) => pattern.test(path)))
    .flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })),
    );
}

/** A path parameter value no other test uses, valid for ids, user ids and types alike. */
const PARAM = `am${Date.now().toString(36)}`;
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, PARAM);

const NON_ADMIN = SCOPES.filter((s) => s !== 'admin');
const keys = {} as {
  only: Record<Scope, string>;
  allBut: Record<Scope, string>;
  revoked: string;
  expired: string;
};

beforeAll(async () => {
  const now = Date.now();
  const make = async (scopes: string[], nowMs = now, expiresAt?: string) =>
    createApiKey(
      new ApiKeysRepo(testEnv.DB),
      { name: `matrix ${scopes.join(' ')}`, scopes, expiresAt },
      nowMs,
    );
  const only = {} as Record<Scope, string>;
  const allBut = {} as Record<Scope, string>;
  for (const scope of SCOPES) {
    only[scope] = (await make([scope])).key;
    // Without the scope, and without admin (which holds every scope).
    allBut[scope] = (await make(NON_ADMIN.filter((s) => s !== scope))).key;
  }
  const revoked = await make(['admin']);
  await new ApiKeysRepo(testEnv.DB).revoke(revoked.apiKey.id, now);
  const past = now - 60_000;
  const expired = await make(['admin'], past, new Date(past + 1000).toISOString());
  Object.assign(keys, { only, allBut, revoked: revoked.key, expired: expired.key });
});

describe('scope table', () => {
  it('names every documented keyed route, and only routes that exist', async () => {
    const routes = await keyedRoutes();
    expect(routes.length).toBeGreaterThan(20);
    const undeclared = routes
      .filter((r) => !isDeclared(r.method, r.path))
      .map((r) => `${r.method} ${r.path}`);
    expect(undeclared, 'add these routes to ROUTE_SCOPES in src/api/scopes.ts').toEqual([]);
    const documented = new Set(routes.map((r) => `${r.method} ${r.path}`));
    const stale = Object.keys(ROUTE_SCOPES).filter((entry) => !documented.has(entry));
    expect(stale, 'ROUTE_SCOPES names routes that no longer exist').toEqual([]);
  });

  it('sends, reads, contact writes and admin routes need what the issue says', () => {
    expect(requiredScope('POST', '/v1/notifications')).toBe('notifications:send');
    expect(requiredScope('POST', '/v1/notifications/batch')).toBe('notifications:send');
    expect(requiredScope('GET', '/v1/outbox')).toBe('notifications:read');
    expect(requiredScope('GET', '/metrics')).toBe('notifications:read');
    expect(requiredScope('GET', '/v1/contacts/{userId}')).toBe('contacts:read');
    expect(requiredScope('PATCH', '/v1/contacts/{userId}/preferences')).toBe('contacts:write');
    expect(requiredScope('PUT', '/v1/templates/{type}/{channel}')).toBe('templates:write');
    expect(requiredScope('POST', '/v1/admin/api-keys')).toBe('admin');
    expect(requiredScope('GET', '/v1/not-in-the-table')).toBe('admin');
  });
});

describe('auth matrix: every keyed route × every kind of key', () => {
  it('no, wrong, revoked, expired key: 401; without the scope: 403; with it: neither', async () => {
    const routes = await keyedRoutes();
    for (const { method, path } of routes) {
      const url = concrete(path);
      const body = ['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined;
      const scope = requiredScope(method, path);
      const label = `${method} ${path}`;

      const unauthenticated: [string, string | null, string][] = [
        ['no key', null, 'missing API key'],
        ['wrong key', `hk_live_${'A'.repeat(43)}`, 'invalid API key'],
        ['revoked key', keys.revoked, 'API key revoked'],
        ['expired key', keys.expired, 'API key expired'],
      ];
      for (const [kind, key, message] of unauthenticated) {
        const res = await api(method, url, body, { key });
        expect(res.status, `${label} with ${kind}`).toBe(401);
        expect(res.headers.get('WWW-Authenticate'), `${label} with ${kind}`).toMatch(
          /^Bearer realm="herald"/,
        );
        const error = await json<{ error: { code: string; message: string } }>(res);
        expect(error.error.code).toBe('unauthorized');
        expect(error.error.message, `${label} with ${kind}`).toContain(message);
      }

      const without = await api(method, url, body, { key: keys.allBut[scope] });
      expect(without.status, `${label} without ${scope}`).toBe(403);
      expect(await json(without), `${label} without ${scope}`).toEqual({
        error: { code: 'forbidden', message: `this key lacks the scope ${scope}` },
      });

      const withScope = await api(method, url, body, { key: keys.only[scope] });
      expect([401, 403], `${label} with ${scope}: ${withScope.status}`).not.toContain(withScope.status);
      expect(withScope.status, `${label} with ${scope}`).toBeLessThan(500);
    }
  });
});
