import { describe, expect, it } from 'vitest';
import { api, json } from '../helpers/api';

const routes: [string, string, unknown?][] = [
  ['GET', '/v1/contacts/u1'],
  ['PUT', '/v1/contacts/u1', { email: 'a@example.com' }],
  ['PATCH', '/v1/contacts/u1', { email: 'a@example.com' }],
  ['DELETE', '/v1/contacts/u1'],
  ['POST', '/v1/contacts/u1/device-tokens', { deviceToken: 'a'.repeat(64), platform: 'apns' }],
  ['DELETE', `/v1/contacts/u1/device-tokens/${'a'.repeat(64)}`],
  ['POST', '/v1/notifications', { type: 'security_alert', recipients: ['u1'] }],
  ['POST', '/v1/notifications/batch', { notifications: [{ type: 'security_alert', recipients: ['u1'] }] }],
  ['GET', '/v1/notifications'],
  ['GET', '/v1/notifications/n1'],
  ['GET', '/v1/outbox'],
];

describe('auth', () => {
  for (const [method, path, body] of routes) {
    it(`${method} ${path} without a key is 401 in the envelope`, async () => {
      const res = await api(method, path, body, { key: null });
      expect(res.status).toBe(401);
      expect(res.headers.get('WWW-Authenticate')).toContain('Bearer');
      const err = await json<{ error: { code: string } }>(res);
      expect(err.error.code).toBe('unauthorized');
    });
    it(`${method} ${path} with a wrong key is 401`, async () => {
      const res = await api(method, path, body, { key: 'test-admin-kez' });
      expect(res.status).toBe(401);
    });
  }

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
      '/v1/contacts/{userId}',
      '/v1/contacts/{userId}/device-tokens',
      '/v1/contacts/{userId}/device-tokens/{token}',
      '/v1/notifications',
      '/v1/notifications/batch',
      '/v1/notifications/{id}',
      '/v1/outbox',
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
