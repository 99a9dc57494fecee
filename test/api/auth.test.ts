import { describe, expect, it } from 'vitest';
import { api, json } from '../helpers/api';

interface OpenApiDoc {
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, unknown> };
}

/** Every route the OpenAPI document declares, with its path parameters filled in. */
async function declaredRoutes(): Promise<[string, string][]> {
  const doc = await json<OpenApiDoc>(await api('GET', '/openapi.json', undefined, { key: null }));
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method): [string, string] => [
      method.toUpperCase(),
      path.replace(/\{[^}]+\}/g, 'x1'),
    ]),
  );
}

describe('auth', () => {
  it('every declared /v1 route refuses a missing or wrong key with 401 in the envelope', async () => {
    // Provider callbacks cannot send our key: each is verified by its provider's signature instead.
    const routes = (await declaredRoutes()).filter(
      ([, path]) => (path.startsWith('/v1/') || path === '/metrics') && !path.startsWith('/v1/webhooks/'),
    );
    expect(routes.length).toBeGreaterThan(10);
    for (const [method, path] of routes) {
      const body = ['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined;
      const missing = await api(method, path, body, { key: null });
      expect(missing.status, `${method} ${path} without a key`).toBe(401);
      expect(missing.headers.get('WWW-Authenticate')).toContain('Bearer');
      expect((await json<{ error: { code: string } }>(missing)).error.code).toBe('unauthorized');
      const wrong = await api(method, path, body, { key: 'test-admin-kez' });
      expect(wrong.status, `${method} ${path} with a wrong key`).toBe(401);
    }
  });

  it('a malformed Authorization header is 401', async () => {
    const res = await api('GET', '/v1/notifications', undefined, {
      key: null,
      headers: { Authorization: 'Basic dGVzdA==' },
    });
    expect(res.status).toBe(401);
  });

  it('health and the OpenAPI document need no key', async () => {
    expect((await api('GET', '/healthz', undefined, { key: null })).status).toBe(200);
    expect((await api('GET', '/openapi.json', undefined, { key: null })).status).toBe(200);
  });

  it('unknown routes are 404 in the same envelope', async () => {
    const res = await api('GET', '/v2/nothing', undefined, { key: null });
    expect(res.status).toBe(404);
    expect((await json<{ error: { code: string } }>(res)).error.code).toBe('not_found');
  });

  it('security headers are on every response', async () => {
    const res = await api('GET', '/healthz', undefined, { key: null });
    expect(res.headers.get('Strict-Transport-Security')).toContain('max-age=');
    expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(res.headers.get('X-Frame-Options')).toBe('DENY');
  });
});

describe('OpenAPI', () => {
  it('describes every route with its schemas', async () => {
    const doc = await json<{
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    }>(await api('GET', '/openapi.json', undefined, { key: null }));
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/inbox.js',
      '/metrics',
      '/t/c/{token}',
      '/t/o/{token}',
      '/u/{token}',
      '/v1/admin/api-keys',
      '/v1/admin/api-keys/{id}',
      '/v1/admin/dead-letters',
      '/v1/admin/dead-letters/replay',
      '/v1/admin/providers',
      '/v1/admin/providers/{name}',
      '/v1/admin/retention/run',
      '/v1/admin/rotate-key',
      '/v1/admin/shards',
      '/v1/admin/shards/move',
      '/v1/contacts/{userId}',
      '/v1/contacts/{userId}/device-tokens',
      '/v1/contacts/{userId}/device-tokens/{token}',
      '/v1/contacts/{userId}/digests',
      '/v1/contacts/{userId}/digests/{type}/flush',
      '/v1/contacts/{userId}/export',
      '/v1/contacts/{userId}/inbox',
      '/v1/contacts/{userId}/inbox/{id}',
      '/v1/contacts/{userId}/preferences',
      '/v1/events/trigger',
      '/v1/events/trigger/bulk',
      '/v1/events/trigger/{transactionId}',
      '/v1/inbox/counts',
      '/v1/inbox/feed',
      '/v1/inbox/items/batch',
      '/v1/inbox/items/{id}/{action}',
      '/v1/inbox/tokens',
      '/v1/metrics',
      '/v1/notifications',
      '/v1/notifications/batch',
      '/v1/notifications/{id}',
      '/v1/notifications/{id}/deliveries',
      '/v1/outbox',
      '/v1/templates',
      '/v1/templates/{type}/config',
      '/v1/templates/{type}/preview',
      '/v1/templates/{type}/{channel}',
      '/v1/templates/{type}/{channel}/versions',
      '/v1/topics',
      '/v1/topics/{key}',
      '/v1/topics/{key}/subscribers',
      '/v1/webhooks/{provider}',
      '/v2/subscribers',
      '/v2/topics',
      '/v2/topics/{topicKey}/subscriptions',
    ]);
    expect(Object.keys(doc.paths['/v1/contacts/{userId}'] ?? {}).sort()).toEqual([
      'delete',
      'get',
      'patch',
      'put',
    ]);
    expect(doc.components.schemas).toHaveProperty('NotificationInput');
    expect(doc.components.schemas).toHaveProperty('EventBridgeEvent');
  });
});
