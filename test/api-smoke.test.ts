import { describe, expect, it } from 'vitest';
import { api, json } from './helpers/api';

describe('api smoke', () => {
  it('health', async () => {
    const res = await api('GET', '/healthz', undefined, { key: null });
    expect(res.status).toBe(200);
  });
  it('openapi', async () => {
    const res = await api('GET', '/openapi.json', undefined, { key: null });
    expect(res.status).toBe(200);
    const doc = await json<{ paths: Record<string, unknown> }>(res);
    expect(Object.keys(doc.paths)).toContain('/v1/notifications');
  });
});
