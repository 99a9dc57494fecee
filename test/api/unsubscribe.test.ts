import { describe, expect, it } from 'vitest';
import { signToken } from '../../src/lib/signed-token';
import { api, json, newContact, testEnv, uniqueUser } from '../helpers/api';
import { readDelivery, readOutbox } from '../helpers/deliveries';
import { drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';

/** An email of `type` to one recipient, sent and delivered through the sandbox. */
async function emailTo(recipient: string | Record<string, unknown>, type: string, data = {}) {
  const captured = envWithCapturedQueues();
  const accepted = await sendNotification(captured, {
    type,
    recipients: [recipient],
    channels: ['email'],
    data,
  });
  await drainQueues(captured);
  return accepted;
}

/** The same, and the message the sandbox captured for it. */
async function sentEmail(
  type: string,
  recipient: string | Record<string, unknown>,
  data: Record<string, unknown> = {},
) {
  const accepted = await emailTo(recipient, type, data);
  const [entry] = await readOutbox({ notificationId: accepted.id });
  if (!entry) throw new Error('nothing captured');
  return { accepted, entry };
}

const tokenOf = (url: string) => url.replace(/^<|>$/g, '').split('/u/')[1] ?? '';

async function post(path: string, body: string) {
  return api('POST', path, body, {
    key: null,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
}

describe('unsubscribe', () => {
  it('every email carries both RFC 8058 headers and a footer link', async () => {
    const userId = await newContact({ email: 'a@example.com' });
    const { entry } = await sentEmail('order_shipped', userId, { order_id: 'A1' });
    const headers = entry.message.headers ?? {};
    expect(headers['List-Unsubscribe']).toMatch(/^<https:\/\/herald\.test\/u\/[A-Za-z0-9_.-]+>$/);
    expect(headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    const url = headers['List-Unsubscribe']?.slice(1, -1) ?? '';
    expect(entry.message.html).toContain(`href="${url}"`);
    expect(entry.message.text).toContain(`Unsubscribe: ${url}`);
  });

  it('a required type carries no unsubscribe link', async () => {
    const { entry } = await sentEmail('security_alert', { email: 'b@example.com' });
    expect(entry.message.headers?.['List-Unsubscribe']).toBeUndefined();
  });

  it('one-click POST unsubscribes from the type at once, and the history records it', async () => {
    const userId = await newContact({ email: 'a@example.com' });
    const { accepted, entry } = await sentEmail('order_shipped', userId, { order_id: 'A1' });
    const token = tokenOf(entry.message.headers?.['List-Unsubscribe'] ?? '');
    const res = await post(`/u/${token}`, 'List-Unsubscribe=One-Click');
    expect(res.status).toBe(200);
    const prefs = await json(await api('GET', `/v1/contacts/${userId}/preferences`));
    expect(prefs).toMatchObject({ types: { order_shipped: { email: false } } });
    const d = await readDelivery(accepted.id);
    expect(d.status).toBe('unsubscribed');
    expect(d.history.at(-1)?.status).toBe('unsubscribed');
    // and the next one is suppressed: nothing is sent
    const next = await emailTo(userId, 'order_shipped', { order_id: 'A2' });
    expect(await readDelivery(next.id)).toMatchObject({
      status: 'suppressed',
      reason: 'user opted out of order_shipped on email',
    });
    expect(await readOutbox({ notificationId: next.id })).toEqual([]);
  });

  it('the page offers the choice; scope=channel turns the whole channel off', async () => {
    const userId = await newContact({ email: 'a@example.com' });
    const { entry } = await sentEmail('payment_reminder', userId, {});
    const token = tokenOf(entry.message.headers?.['List-Unsubscribe'] ?? '');
    const page = await api('GET', `/u/${token}`, undefined, { key: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('Content-Type')).toContain('text/html');
    expect(page.headers.get('Content-Security-Policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('Stop payment reminder messages');
    expect(html).toContain('Stop every email message');
    expect((await post(`/u/${token}`, 'scope=channel')).status).toBe(200);
    expect(await json(await api('GET', `/v1/contacts/${userId}/preferences`))).toMatchObject({
      channels: { email: false },
    });
  });

  it('a forged, altered or wrong-purpose token gets 404 and changes nothing', async () => {
    const userId = await newContact({ email: 'a@example.com' });
    const { accepted, entry } = await sentEmail('order_shipped', userId, { order_id: 'A1' });
    const token = tokenOf(entry.message.headers?.['List-Unsubscribe'] ?? '');
    const altered = `${token.slice(0, -2)}${token.endsWith('A') ? 'B' : 'A'}${token.slice(-1)}`;
    const forged = await signToken('not-our-secret', 'unsubscribe', { d: accepted.deliveries[0]?.id ?? '' });
    const clickToken = await signToken('test-signing-secret', 'click', {
      d: accepted.deliveries[0]?.id ?? '',
      u: 'https://x',
    });
    for (const bad of [altered, forged, clickToken, 'garbage']) {
      expect((await post(`/u/${bad}`, 'List-Unsubscribe=One-Click')).status).toBe(404);
      expect((await api('GET', `/u/${bad}`, undefined, { key: null })).status).toBe(404);
    }
    expect(await json(await api('GET', `/v1/contacts/${userId}/preferences`))).toEqual({
      channels: {},
      types: {},
      quietHours: null,
    });
  });

  it('a recipient without a user id goes on the suppression list for that address', async () => {
    const email = `${uniqueUser('anon')}@example.com`;
    const { entry } = await sentEmail('order_shipped', { email }, { order_id: 'A1' });
    const token = tokenOf(entry.message.headers?.['List-Unsubscribe'] ?? '');
    expect((await post(`/u/${token}`, 'List-Unsubscribe=One-Click')).status).toBe(200);
    const again = await sendNotification(envWithCapturedQueues(), {
      type: 'order_shipped',
      recipients: [{ email }],
      channels: ['email'],
      data: { order_id: 'A2' },
    });
    expect(again.deliveries[0]).toMatchObject({ status: 'suppressed' });
    const rows = await testEnv.DB.prepare('SELECT count(*) AS n FROM suppressions').first<{ n: number }>();
    expect(rows?.n).toBeGreaterThan(0);
  });
});

describe('email tracking in the send path', () => {
  it('links are rewritten to signed click URLs and a pixel is added; the unsubscribe link is left alone', async () => {
    const userId = await newContact({ email: 'a@example.com' });
    const { entry } = await sentEmail('order_shipped', userId, {
      order_id: 'A1',
      tracking_url: 'https://carrier.example.com/t/123?x=1&y=2',
    });
    const html = entry.message.html ?? '';
    expect(html).not.toContain('https://carrier.example.com/t/123');
    expect(html).toMatch(/href="https:\/\/herald\.test\/t\/c\/[A-Za-z0-9_.-]+"/);
    expect(html).toMatch(/<img[^>]+src="https:\/\/herald\.test\/t\/o\/[A-Za-z0-9_.-]+"/);
    expect(html).toMatch(/href="https:\/\/herald\.test\/u\//);
    const click = /href="(https:\/\/herald\.test\/t\/c\/[^"]+)"/.exec(html)?.[1] ?? '';
    const res = await api('GET', new URL(click).pathname, undefined, { key: null });
    expect(res.status).toBe(302);
    expect(res.headers.get('Location')).toBe('https://carrier.example.com/t/123?x=1&y=2');
  });
});
