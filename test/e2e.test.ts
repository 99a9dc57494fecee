import { describe, expect, it } from 'vitest';
import { api, FCM_TOKEN, json, newContact, SLACK_URL, seedEvent, until } from './helpers/api';
import { type NotificationView, readOutbox } from './helpers/deliveries';

describe('end to end: fetch → D1 → real local queues → consumer → sandbox outbox', () => {
  it('payment_reminder to a contact with email, phone, an FCM token and Slack: four deliveries sent', async () => {
    const userId = await newContact({
      email: 'ada@example.com',
      phone: '+14155550123',
      deviceTokens: [{ deviceToken: FCM_TOKEN, platform: 'fcm' }],
      externalChannels: [{ platform: 'slack', url: SLACK_URL }],
    });
    const res = await api('POST', '/v1/notifications', {
      type: 'payment_reminder',
      recipients: [userId],
      data: { amount: '42.00', currency: 'EUR', due_date: '2026-12-01', name: 'Ada <3' },
    });
    expect(res.status).toBe(202);
    const { id } = await json<{ id: string }>(res);

    const final = await until(
      async () => json<NotificationView>(await api('GET', `/v1/notifications/${id}`)),
      (n) => n.deliveries.every((d) => d.status === 'sent'),
    );
    expect(final.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['email', 'sent'],
      ['sms', 'sent'],
      ['push', 'sent'],
      ['chat', 'sent'],
    ]);
    expect(final.deliveries[0]?.history.map((h) => h.status)).toEqual(['created', 'queued', 'sent']);

    const byChannel = Object.fromEntries((await readOutbox({ userId })).map((e) => [e.channel, e.message]));
    expect(Object.keys(byChannel).sort()).toEqual(['chat', 'email', 'push', 'sms']);
    expect(byChannel.email?.subject).toBe('Payment reminder: 42.00 EUR due 2026-12-01');
    expect(byChannel.email?.html).toContain('Hello Ada &lt;3,');
    expect(byChannel.email?.text).toContain('Hello Ada <3,');
    expect(byChannel.sms?.text).toBe('Reminder: 42.00 EUR is due on 2026-12-01.');
    expect(byChannel.push).toEqual({
      title: 'Payment due 2026-12-01',
      body: '42.00 EUR is due on 2026-12-01.',
    });
    expect(byChannel.chat?.text).toContain('*42.00 EUR*');
  });

  it('the seed EventBridge event is delivered by SMS', async () => {
    const userId = await newContact({ phone: '+14155550123', email: 'b@example.com' });
    const eventId = `evt-${userId}`;
    const res = await api(
      'POST',
      '/v1/notifications',
      seedEvent(eventId, { userId, message: 'Your payment of 42.00 EUR is due tomorrow.' }),
    );
    expect(res.status).toBe(202);
    const final = await until(
      async () => json<NotificationView>(await api('GET', `/v1/notifications/${eventId}`)),
      (n) => n.deliveries.every((d) => d.status === 'sent'),
    );
    expect(final.deliveries.map((d) => [d.channel, d.status])).toEqual([['sms', 'sent']]);
    const [sms] = await readOutbox({ userId, channel: 'sms' });
    expect(sms?.message.text).toBe('Your payment of 42.00 EUR is due tomorrow.');
  });
});
