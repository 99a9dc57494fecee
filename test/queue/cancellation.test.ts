import { describe, expect, it } from 'vitest';
import { createServices } from '../../src/services/container';
import { api, json, newContact, testEnv, uniqueUser } from '../helpers/api';
import { readDeliveries, readOutbox } from '../helpers/deliveries';
import { consumeEnqueued, drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';
import { commit, userInShard } from '../helpers/shards';

type Cancellation = { id: string; canceled: string[]; alreadyGone: { id: string; status: string }[] };

const reminder = (userId: string, extra: Record<string, unknown> = {}) => ({
  type: 'payment_reminder',
  recipients: [{ userId, email: `${userId}@example.com` }],
  channels: ['email'],
  data: { amount: '42.00', currency: 'EUR', due_date: '2026-12-01' },
  ...extra,
});

describe('cancellation', () => {
  it('a scheduled notification is canceled whole; its queued message then sends nothing', async () => {
    const captured = envWithCapturedQueues();
    const [a, b] = [userInShard(0, 'cancel'), userInShard(1, 'cancel')];
    const accepted = await sendNotification(captured, {
      ...reminder(a),
      recipients: [
        { userId: a, email: `${a}@example.com` },
        { userId: b, email: `${b}@example.com` },
      ],
      sendAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    const res = await api('DELETE', `/v1/notifications/${accepted.id}`);
    expect(res.status).toBe(200);
    expect(await json<Cancellation>(res)).toEqual({
      id: accepted.id,
      canceled: accepted.deliveries.map((d) => d.id),
      alreadyGone: [],
    });
    await drainQueues(captured);
    const deliveries = await readDeliveries(accepted.id);
    expect(deliveries.map((d) => d.status)).toEqual(['canceled', 'canceled']);
    expect(deliveries[0]?.history.at(-1)).toMatchObject({
      status: 'canceled',
      reason: 'canceled by the producer',
    });
    expect(await readOutbox({ notificationId: accepted.id })).toEqual([]);
  });

  it('what had already gone is reported, and stays as it was', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'gone@example.com', phone: '+14155550123' });
    const accepted = await sendNotification(captured, reminder(userId, { channels: ['email', 'sms'] }));
    await consumeEnqueued(captured, 'email');
    const [email, sms] = accepted.deliveries;
    const body = await json<Cancellation>(await api('DELETE', `/v1/notifications/${accepted.id}`));
    expect(body).toEqual({
      id: accepted.id,
      canceled: [sms?.id],
      alreadyGone: [{ id: email?.id, status: 'sent' }],
    });
    // Again: nothing left to cancel.
    const again = await json<Cancellation>(await api('DELETE', `/v1/notifications/${accepted.id}`));
    expect(again.canceled).toEqual([]);
    expect(again.alreadyGone.map((d) => d.status)).toEqual(['sent', 'canceled']);
  });

  it('a cancelKey cancels every notification sharing it, and only those', async () => {
    const captured = envWithCapturedQueues();
    const cancelKey = `invoice-${uniqueUser('inv')}`;
    const sendAt = new Date(Date.now() + 86_400_000).toISOString();
    const reminders = [];
    for (const who of ['cancel_k1', 'cancel_k2', 'cancel_k3'])
      reminders.push(await sendNotification(captured, reminder(uniqueUser(who), { cancelKey, sendAt })));
    const other = await sendNotification(captured, reminder(uniqueUser('cancel_other'), { sendAt }));

    const res = await api('DELETE', `/v1/notifications?cancelKey=${encodeURIComponent(cancelKey)}`);
    expect(res.status).toBe(200);
    const body = await json<{ notifications: Cancellation[]; more: boolean }>(res);
    expect(body.more).toBe(false);
    expect(body.notifications.map((n) => n.id).sort()).toEqual(reminders.map((r) => r.id).sort());
    for (const r of reminders) expect((await readDeliveries(r.id))[0]?.status).toBe('canceled');
    expect((await readDeliveries(other.id))[0]?.status).toBe('queued');
    expect(await json(await api('GET', `/v1/notifications/${reminders[0]?.id}`))).toMatchObject({
      cancelKey,
    });
    expect((await api('DELETE', '/v1/notifications?cancelKey=')).status).toBe(422);
  });

  it('an unknown notification is a 404; a key without notifications:write a 403', async () => {
    expect((await api('DELETE', '/v1/notifications/ntf_never_seen')).status).toBe(404);
    const sender = await json<{ key: string }>(
      await api('POST', '/v1/admin/api-keys', { name: 'sender only', scopes: ['notifications:send'] }),
    );
    expect(
      (await api('DELETE', '/v1/notifications/ntf_never_seen', undefined, { key: sender.key })).status,
    ).toBe(403);
  });

  it("a cancel that came while the provider was being called gives way to the provider's answer", async () => {
    const captured = envWithCapturedQueues();
    const sendAt = new Date(Date.now() + 3600_000).toISOString();
    const accepted = await sendNotification(captured, {
      ...reminder(uniqueUser('race')),
      recipients: [
        { userId: uniqueUser('race_a'), email: 'race.a@example.com' },
        { userId: uniqueUser('race_b'), email: 'race.b@example.com' },
      ],
      sendAt,
    });
    await api('DELETE', `/v1/notifications/${accepted.id}`);
    const [went, refused] = accepted.deliveries.map((d) => d.id);
    const services = createServices(testEnv);
    // The consumer had loaded both before the cancel: one provider took it, one refused it.
    await commit(
      services.deliveries.outcomeStatements(
        [
          { deliveryId: went ?? '', status: 'sent', provider: 'resend', attempted: true },
          {
            deliveryId: refused ?? '',
            status: 'failed',
            reason: 'rejected',
            provider: 'resend',
            attempted: true,
          },
        ],
        Date.now(),
      ),
    );
    const statuses = (await readDeliveries(accepted.id)).map((d) => [d.id, d.status]);
    expect(statuses).toEqual([
      [went, 'sent'],
      [refused, 'canceled'],
    ]);
  });
});
