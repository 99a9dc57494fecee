import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { quickstart, readStatus } from '../../clients/js/examples/quickstart';
import { createHeraldClient, HeraldApiError, unwrap } from '../../clients/js/src/index';
import { ADMIN_KEY, uniqueUser } from '../helpers/api';

/**
 * The typed client (clients/js) against the Worker: the README's quickstart runs as it is written,
 * every request through the generated types and openapi-fetch, answered by the Worker in workerd.
 */
const herald = createHeraldClient({
  baseUrl: 'https://herald.test',
  apiKey: ADMIN_KEY,
  fetch: (request) => SELF.fetch(request),
});

/** Polls until `probe` answers something (the Worker's queues run on their own), for up to 10 s. */
async function eventually<T>(probe: () => Promise<T | null>): Promise<T | null> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const found = await probe();
    if (found !== null) return found;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return null;
}

describe('typed client (clients/js)', () => {
  it('runs the quickstart: a contact, a notification to them, its status, a send to a topic', async () => {
    const userId = uniqueUser('quickstart');
    const result = await quickstart(herald, userId);
    expect(result.notificationId).toMatch(/^ntf_/);
    expect(result.deliveries).toHaveLength(1);
    expect(result.deliveries[0]?.channel).toBe('email');
    // Queued at acceptance; the queue consumer may already have sent it through the sandbox.
    expect(['queued', 'sent', 'delivered']).toContain(result.deliveries[0]?.status);

    const contact = await unwrap(herald.GET('/v1/contacts/{userId}', { params: { path: { userId } } }));
    expect(contact.email).toBe('ada@example.com');

    // The topic send: answered before the expansion, which the Worker's own queues then run.
    expect(result.followers.topics).toEqual(['project_42_followers']);
    const reached = await eventually(async () => {
      const { deliveries } = await readStatus(herald, result.followers.notificationId);
      return deliveries.length > 0 ? deliveries : null;
    });
    expect(reached).toEqual([{ channel: 'inapp', status: expect.any(String) }]);
    const notification = await unwrap(
      herald.GET('/v1/notifications/{id}', { params: { path: { id: result.followers.notificationId } } }),
    );
    // The follower, not the author who subscribed too: the actor is never reached through a topic.
    expect(notification.deliveries.map((d) => d.userId)).toEqual([userId]);
  });

  it('answers an error in the envelope, typed, and unwrap throws it', async () => {
    const missing = await herald.GET('/v1/notifications/{id}', { params: { path: { id: 'ntf_missing' } } });
    expect(missing.response.status).toBe(404);
    expect(missing.error?.error.code).toBe('not_found');

    const invalid = herald.POST('/v1/notifications', { body: { type: 'order_shipped', recipients: [] } });
    await expect(unwrap(invalid)).rejects.toMatchObject({ status: 422, code: 'validation_error' });
    await expect(unwrap(invalid)).rejects.toBeInstanceOf(HeraldApiError);
  });

  it('sends the API key: without a valid one the Worker answers 401', async () => {
    const stranger = createHeraldClient({
      baseUrl: 'https://herald.test',
      apiKey: 'not-a-key',
      fetch: (request) => SELF.fetch(request),
    });
    const { error, response } = await stranger.GET('/v1/notifications', {});
    expect(response.status).toBe(401);
    expect(error?.error.code).toBe('unauthorized');
  });
});
