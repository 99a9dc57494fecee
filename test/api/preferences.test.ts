import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, json, newContact, uniqueUser } from '../helpers/api';
import { type DeliveryView, readDeliveries } from '../helpers/deliveries';
import { type CapturedEnv, drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';

afterEach(() => vi.useRealTimers());

/** Sends the notification, runs the consumers on what it enqueued, and reads its deliveries back. */
async function deliverNow(
  body: Record<string, unknown>,
  captured: CapturedEnv = envWithCapturedQueues(),
): Promise<DeliveryView[]> {
  const accepted = await sendNotification(captured, body);
  await drainQueues(captured);
  return readDeliveries(accepted.id);
}

/** An order_shipped notification to one user on these channels. */
const orderShipped = (userId: string, channels: string[]) => ({
  type: 'order_shipped',
  recipients: [userId],
  channels,
  data: { order_id: 'A1' },
});

/** A new contact with these addresses and preferences. */
async function contact(body: Record<string, unknown>, preferences: Record<string, unknown>): Promise<string> {
  const userId = await newContact(body);
  expect((await api('PUT', `/v1/contacts/${userId}/preferences`, preferences)).status).toBe(200);
  return userId;
}

describe('preferences API', () => {
  it('defaults when nothing was set, PUT replaces, PATCH merges', async () => {
    const userId = uniqueUser();
    expect(await json(await api('GET', `/v1/contacts/${userId}/preferences`))).toEqual({
      channels: {},
      types: {},
      quietHours: null,
    });
    await api('PUT', `/v1/contacts/${userId}/preferences`, {
      channels: { sms: false },
      types: { order_shipped: { push: false } },
    });
    const patched = await api('PATCH', `/v1/contacts/${userId}/preferences`, {
      types: { order_shipped: { email: false }, payment_reminder: { all: false } },
      quietHours: { start: '22:00', end: '07:00' },
    });
    expect(await json(patched)).toEqual({
      channels: { sms: false },
      types: { order_shipped: { push: false, email: false }, payment_reminder: { all: false } },
      quietHours: { start: '22:00', end: '07:00' },
    });
    const cleared = await api('PATCH', `/v1/contacts/${userId}/preferences`, { quietHours: null });
    expect((await json<{ quietHours: unknown }>(cleared)).quietHours).toBeNull();
  });

  it('a required type cannot be turned off (422 naming it), and bad input names the field', async () => {
    const userId = uniqueUser();
    const res = await api('PUT', `/v1/contacts/${userId}/preferences`, {
      types: { security_alert: { email: false } },
    });
    expect(res.status).toBe(422);
    expect((await json<{ error: { details: { field: string }[] } }>(res)).error.details[0]?.field).toBe(
      'types.security_alert',
    );
    const bad = await api('PUT', `/v1/contacts/${userId}/preferences`, {
      quietHours: { start: '25:00', end: '07:00' },
    });
    expect(bad.status).toBe(422);
    expect((await json<{ error: { details: { field: string }[] } }>(bad)).error.details[0]?.field).toBe(
      'quietHours.start',
    );
    expect(
      (await api('PUT', `/v1/contacts/${userId}/preferences`, { channels: { fax: false } })).status,
    ).toBe(422);
  });
});

describe('preferences in the consumer', () => {
  it('a channel switched off → suppressed with the reason', async () => {
    const userId = await contact({ phone: '+14155550123' }, { channels: { sms: false } });
    const [d] = await deliverNow(orderShipped(userId, ['sms']));
    expect(d).toMatchObject({ status: 'suppressed', reason: 'user turned sms off' });
  });

  it('a type opted out on one channel → suppressed there, sent on the others', async () => {
    const userId = await contact(
      { email: 'a@example.com', phone: '+14155550123' },
      { types: { order_shipped: { sms: false } } },
    );
    const got = await deliverNow(orderShipped(userId, ['email', 'sms']));
    expect(got.map((d) => [d.channel, d.status])).toEqual([
      ['email', 'sent'],
      ['sms', 'suppressed'],
    ]);
  });

  it('a type opted out on all channels, and a channel switch, do not stop a required type', async () => {
    const userId = await contact({ email: 'a@example.com' }, { channels: { email: false } });
    const [d] = await deliverNow({ type: 'security_alert', recipients: [userId], channels: ['email'] });
    expect(d?.status).toBe('sent');
  });

  it('an explicit opt-in wins over a channel switched off', async () => {
    const userId = await contact(
      { email: 'a@example.com' },
      { channels: { email: false }, types: { order_shipped: { email: true } } },
    );
    const [d] = await deliverNow(orderShipped(userId, ['email']));
    expect(d?.status).toBe('sent');
  });
});

describe('quiet hours', () => {
  async function atInstant(
    iso: string,
    timezone: string,
    quietHours: { start: string; end: string },
    priority?: string,
  ) {
    const captured = envWithCapturedQueues();
    const userId = await contact({ email: 'a@example.com', timezone }, { quietHours });
    vi.useFakeTimers({ now: new Date(iso), toFake: ['Date'] });
    const [d] = await deliverNow(
      { ...orderShipped(userId, ['email']), ...(priority ? { priority } : {}) },
      captured,
    );
    const waiting = captured.queues.email.sent.at(-1);
    vi.useRealTimers();
    return { d, waiting };
  }

  it('across midnight in the contact time zone: deferred to the exact end', async () => {
    // 23:30 in Paris (UTC+1 in winter) → quiet until 07:00 Paris = 06:00Z next day
    const { d } = await atInstant('2026-01-14T22:30:00Z', 'Europe/Paris', { start: '22:00', end: '07:00' });
    expect(d?.status).toBe('deferred');
    expect(d?.reason).toContain('until 2026-01-15T06:00:00.000Z');
  });

  it('another time zone: 22:30 in New York is 03:30Z; quiet until 07:00 EST = 12:00Z', async () => {
    const { d } = await atInstant('2026-01-15T03:30:00Z', 'America/New_York', {
      start: '22:00',
      end: '07:00',
    });
    expect(d?.reason).toContain('until 2026-01-15T12:00:00.000Z');
  });

  it('across a DST change: the night Paris moves to summer time ends at 07:00 CEST = 05:00Z', async () => {
    const { d } = await atInstant('2026-03-28T22:30:00Z', 'Europe/Paris', { start: '22:00', end: '07:00' });
    expect(d?.reason).toContain('until 2026-03-29T05:00:00.000Z');
  });

  it('outside quiet hours it is sent', async () => {
    const { d } = await atInstant('2026-01-15T12:00:00Z', 'Europe/Paris', { start: '22:00', end: '07:00' });
    expect(d?.status).toBe('sent');
  });

  it('critical notifications ignore quiet hours', async () => {
    const { d } = await atInstant(
      '2026-01-14T22:30:00Z',
      'Europe/Paris',
      { start: '22:00', end: '07:00' },
      'critical',
    );
    expect(d?.status).toBe('sent');
  });
});
