import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Env } from '../../src/config/env';
import { bucketOfKey } from '../../src/domain/shards';
import { bucketOfId } from '../../src/lib/ids';
import { createServices } from '../../src/services/container';
import type { Metrics } from '../../src/services/operations/metrics';
import { suppressionKeyOf } from '../../src/services/recipients/suppressions';
import { trackEmail } from '../../src/services/tracking/opens-and-clicks';
import { base64, p1363ToDer } from '../callbacks/helpers';
import { api, json, testEnv, uniqueUser } from '../helpers/api';
import { delivery, insertDeliveries, readOutbox, sentDelivery, statusesOf } from '../helpers/deliveries';
import {
  type Accepted,
  atTime,
  consumeEnqueued,
  deadLetter,
  drainQueues,
  envWithCapturedQueues,
  runCron,
  sendNotification,
  unusedCronTime,
} from '../helpers/queues';
import {
  allShards,
  bucketInShard,
  countAll,
  dbOfDelivery,
  router,
  rowsPerDatabase,
  sql,
  userInShard,
} from '../helpers/shards';

/**
 * D1 is sharded: a user's contact, preferences, deliveries, outbox rows and dead letters live in
 * the shard their bucket maps to (`SHARD_MAP`: buckets 0-127 in DB_0, 128-255 in DB_1 here), the
 * home database (`DB`) keeps cross-user data. These tests look at the databases themselves.
 */

afterEach(() => vi.restoreAllMocks());

const [FIRST, SECOND] = allShards();
const NAMES = allShards().map((s) => s.name);

/** How many rows a query finds in each database (home first), by binding name. */
async function countsPerDatabase(query: string, ...params: unknown[]): Promise<Record<string, number>> {
  const rows = await rowsPerDatabase(query, ...params);
  return Object.fromEntries(Object.entries(rows).map(([name, list]) => [name, list.length]));
}

/** Only `name` holds rows: `count` of them there, none in the other shard or the home database. */
function onlyIn(name: string, count: number): Record<string, number> {
  return Object.fromEntries([router().home.name, ...NAMES].map((db) => [db, db === name ? count : 0]));
}

/** The API's view of a notification. */
interface NotificationView {
  id: string;
  data: Record<string, unknown>;
  createdAt: string;
  deliveries: { id: string; userId: string | null; channel: string; status: string }[];
}

async function readNotification(id: string): Promise<NotificationView> {
  const res = await api('GET', `/v1/notifications/${id}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return json<NotificationView>(res);
}

describe('shards: where a user lives', () => {
  it('the test deployment has two shards besides the home database', () => {
    expect(NAMES).toEqual(['DB_0', 'DB_1']);
    expect(router().home.name).toBe('DB');
    expect(router().forBucket(0)).toBe(FIRST);
    expect(router().forBucket(127)).toBe(FIRST);
    expect(router().forBucket(128)).toBe(SECOND);
    expect(router().forBucket(255)).toBe(SECOND);
  });

  it.each([0, 1])(
    "a user's contact, preferences and deliveries land in their shard only (shard %i), none in the other shard or the home database",
    async (index) => {
      const userId = userInShard(index, 'home');
      const shard = allShards()[index]?.name ?? '';
      expect(router().forUser(userId).name).toBe(shard);
      expect(
        (await api('PUT', `/v1/contacts/${userId}`, { email: 'lives@example.com', phone: '+14155550142' }))
          .status,
      ).toBe(200);
      expect(
        (await api('PUT', `/v1/contacts/${userId}/preferences`, { channels: { sms: false } })).status,
      ).toBe(200);
      const captured = envWithCapturedQueues();
      const sent = await sendNotification(captured, {
        type: 'payment_reminder',
        recipients: [userId],
        channels: ['email', 'sms'],
        data: {},
      });
      // The email is sent (an outbox row); the SMS is held back by the preferences.
      await drainQueues(captured);
      // A second one reaches the dead-letter queue (a dead letter).
      const dead = await sendNotification(captured, {
        type: 'payment_reminder',
        recipients: [userId],
        channels: ['email'],
        data: {},
      });
      const deadId = dead.deliveries[0]?.id ?? '';
      await deadLetter(captured.env, 'email', [deadId]);

      expect(
        await countsPerDatabase('SELECT user_id FROM contacts WHERE user_id = ?', userId),
        'contacts',
      ).toEqual(onlyIn(shard, 1));
      expect(
        await countsPerDatabase('SELECT user_id FROM notification_settings WHERE user_id = ?', userId),
        'notification_settings',
      ).toEqual(onlyIn(shard, 1));
      expect(
        await countsPerDatabase('SELECT id FROM deliveries WHERE user_id = ?', userId),
        'deliveries',
      ).toEqual(onlyIn(shard, 3));
      expect(await countsPerDatabase('SELECT id FROM outbox WHERE user_id = ?', userId), 'outbox').toEqual(
        onlyIn(shard, 1),
      );
      expect(
        await countsPerDatabase('SELECT delivery_id FROM dead_letters WHERE delivery_id = ?', deadId),
        'dead_letters',
      ).toEqual(onlyIn(shard, 1));
      // And the API reads them back from there.
      expect((await readNotification(sent.id)).deliveries.map((d) => [d.channel, d.status])).toEqual([
        ['email', 'sent'],
        ['sms', 'suppressed'],
      ]);
      expect((await delivery(deadId)).status).toBe('failed');
      const listed = await json<{ data: { deliveryId: string }[] }>(
        await api('GET', '/v1/admin/dead-letters?channel=email&limit=1000'),
      );
      expect(listed.data.map((d) => d.deliveryId)).toContain(deadId);
    },
  );

  it('a notification to two users in different shards is written in both and reads whole, by id and in the list', async () => {
    const [a, b] = [userInShard(0, 'pair'), userInShard(1, 'pair')];
    for (const userId of [a, b])
      await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` });
    const captured = envWithCapturedQueues();
    const data = { note: 'split across shards' };
    const accepted = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [a, b],
      channels: ['email'],
      data,
    });
    const [toA, toB] = accepted.deliveries.map((d) => d.id);
    expect(router().forId(toA ?? '')).toBe(FIRST);
    expect(router().forId(toB ?? '')).toBe(SECOND);
    // One row in each shard (each part's head carrying the data), none at home.
    const rows = await rowsPerDatabase(
      'SELECT id, user_id, data FROM deliveries WHERE notification_id = ? ORDER BY id',
      accepted.id,
    );
    expect(rows.DB).toEqual([]);
    expect(rows.DB_0?.map((r) => [r.id, r.user_id])).toEqual([[toA, a]]);
    expect(rows.DB_1?.map((r) => [r.id, r.user_id])).toEqual([[toB, b]]);
    for (const row of [...(rows.DB_0 ?? []), ...(rows.DB_1 ?? [])]) expect(row.data).toMatch(/^enc:v1:/);

    // By id: both deliveries, the data.
    const whole = await readNotification(accepted.id);
    expect(whole.data).toEqual(data);
    expect(whole.deliveries.map((d) => [d.id, d.userId]).sort()).toEqual(
      [
        [toA, a],
        [toB, b],
      ].sort(),
    );
    // In the list, found through either user: once, whole.
    for (const userId of [a, b]) {
      const page = await json<{ data: NotificationView[] }>(
        await api('GET', `/v1/notifications?userId=${userId}`),
      );
      expect(page.data.map((n) => n.id)).toEqual([accepted.id]);
      expect(page.data[0]?.data).toEqual(data);
      expect(page.data[0]?.deliveries.map((d) => d.id).sort()).toEqual([toA, toB].sort());
    }
    // And the consumer sends both, each recorded in its shard.
    await drainQueues(captured);
    expect((await readNotification(accepted.id)).deliveries.map((d) => d.status)).toEqual(['sent', 'sent']);
    expect((await readOutbox({ notificationId: accepted.id })).map((e) => e.deliveryId).sort()).toEqual(
      [toA, toB].sort(),
    );
    expect(await countsPerDatabase('SELECT id FROM outbox WHERE delivery_id = ?', toA)).toEqual(
      onlyIn('DB_0', 1),
    );
    expect(await countsPerDatabase('SELECT id FROM outbox WHERE delivery_id = ?', toB)).toEqual(
      onlyIn('DB_1', 1),
    );
  });

  it("a notification's deliveries read back in the order planned when its recipients are in different shards", async () => {
    // Planned: the second shard's user first. Ids sort by bucket before anything random.
    const [first, second] = [userInShard(1, 'order'), userInShard(0, 'order')];
    for (const userId of [first, second])
      await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` });
    const accepted = await sendNotification(envWithCapturedQueues(), {
      type: 'security_alert',
      recipients: [first, second],
      channels: ['email'],
    });
    expect(accepted.deliveries.map((d) => d.userId)).toEqual([first, second]);
    expect((await readNotification(accepted.id)).deliveries.map((d) => d.userId)).toEqual([first, second]);
  });

  it('a delivery id names its bucket and the consumer finds it in its shard', async () => {
    const userId = userInShard(1, 'named');
    await api('PUT', `/v1/contacts/${userId}`, { email: 'named@example.com' });
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [userId],
      channels: ['email'],
    });
    const id = accepted.deliveries[0]?.id ?? '';
    expect(bucketOfId(id)).toBe(bucketOfKey(userId));
    expect(router().forId(id)).toBe(SECOND);
    expect(await countsPerDatabase('SELECT id FROM deliveries WHERE id = ?', id)).toEqual(onlyIn('DB_1', 1));

    const { result, messageIds } = await consumeEnqueued(captured, 'email');
    expect(result.explicitAcks).toEqual(messageIds);
    expect(result.retryMessages).toEqual([]);
    expect(await delivery(id)).toMatchObject({ status: 'sent', provider: 'sandbox', attempts: 1 });
    expect(await countsPerDatabase('SELECT id FROM outbox WHERE delivery_id = ?', id)).toEqual(
      onlyIn('DB_1', 1),
    );
  });

  it('an inline recipient without a user id is placed by its address: two sends to the same address land in the same shard', async () => {
    const email = `${uniqueUser('inline')}@example.com`;
    const phone = `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const services = createServices(testEnv);
    const bucketOf = async (channel: 'email' | 'sms', value: string) =>
      bucketOfKey((await suppressionKeyOf(services, { channel, value })).addressHash);
    const captured = envWithCapturedQueues();
    const send = () =>
      sendNotification(captured, {
        type: 'security_alert',
        recipients: [{ email, phone }],
        channels: ['email', 'sms'],
      });
    const [one, two] = [await send(), await send()];
    const byChannel = (accepted: Accepted, channel: string) =>
      accepted.deliveries.find((d) => d.channel === channel)?.id ?? '';
    for (const [channel, value] of [
      ['email', email],
      ['sms', phone],
    ] as const) {
      const ids = [byChannel(one, channel), byChannel(two, channel)];
      const bucket = await bucketOf(channel, value);
      // Each delivery in its address's bucket: the same one both times.
      expect(ids.map((id) => bucketOfId(id))).toEqual([bucket, bucket]);
      const shard = router().forBucket(bucket).name;
      for (const id of ids)
        expect(await countsPerDatabase('SELECT id FROM deliveries WHERE id = ?', id)).toEqual(
          onlyIn(shard, 1),
        );
    }
  });
});

describe('shards: erasure', () => {
  it.each([
    [0, 1],
    [1, 0],
  ])(
    'erasing a user in shard %i keeps the data of a notification shared with a user in shard %i',
    async (erasedIn, keptIn) => {
      const [erased, kept] = [userInShard(erasedIn, 'erase'), userInShard(keptIn, 'keep')];
      for (const userId of [erased, kept])
        await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` });
      const data = { order_id: `SHARED-${erasedIn}${keptIn}` };
      const accepted = await sendNotification(envWithCapturedQueues(), {
        type: 'security_alert',
        recipients: [erased, kept],
        channels: ['email'],
        data,
      });
      expect((await api('DELETE', `/v1/contacts/${erased}`)).status).toBe(204);

      const after = await readNotification(accepted.id);
      expect(after.data).toEqual(data);
      // Only the erased user's address went; no part of the notification lost its data.
      const heads = await sql<{ data: string }>(
        'SELECT data FROM deliveries WHERE notification_id = ? AND request_hash IS NOT NULL',
        accepted.id,
      );
      expect(heads.length).toBeGreaterThan(0);
      for (const head of heads) expect(head.data).toMatch(/^enc:v1:/);
      const exported = await json<{
        erased: { contact: boolean; deliveries: number; notifications: number };
      }>(await api('GET', `/v1/contacts/${erased}/export`));
      expect(exported.erased).toMatchObject({ contact: true, deliveries: 1, notifications: 0 });
    },
  );

  it('erasing a user reaches their rows in their shard: contact, preferences, addresses and outbox', async () => {
    const userId = userInShard(1, 'gone');
    await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` });
    await api('PUT', `/v1/contacts/${userId}/preferences`, { channels: { sms: false } });
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'payment_reminder',
      recipients: [userId],
      channels: ['email'],
      data: { order_id: 'GONE-1' },
    });
    await drainQueues(captured);
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
    expect(await countAll('SELECT count(*) AS n FROM contacts WHERE user_id = ?', userId)).toBe(0);
    expect(await countAll('SELECT count(*) AS n FROM notification_settings WHERE user_id = ?', userId)).toBe(
      0,
    );
    expect(await countAll('SELECT count(*) AS n FROM outbox WHERE user_id = ?', userId)).toBe(0);
    const [row] = await sql<{ address: string; data: string }>(
      'SELECT address, data FROM deliveries WHERE id = ?',
      accepted.deliveries[0]?.id,
    );
    expect(row?.address).toMatch(/^erased:\d+:contact$/);
    expect(row?.data).toMatch(/^erased:\d+:contact$/);
    expect((await readNotification(accepted.id)).data).toEqual({});
  });
});

describe('shards: reading across them', () => {
  /** Sends `order_shipped` (this describe's type alone) to recipients spread over both shards. */
  async function spreadNotifications(tag: string): Promise<Accepted[]> {
    const users = [userInShard(0, tag), userInShard(1, tag), userInShard(0, tag), userInShard(1, tag)];
    for (const userId of users)
      await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` });
    const captured = envWithCapturedQueues();
    const out: Accepted[] = [];
    for (const recipients of [
      [users[0]],
      [users[1]],
      [users[2], users[3]],
      [users[3]],
      [{ email: `${tag}@example.com` }],
    ]) {
      out.push(
        await sendNotification(captured, {
          type: 'order_shipped',
          recipients,
          channels: ['email'],
          data: { order_id: tag },
        }),
      );
    }
    // Some sent, some left queued: the counts have more than one status.
    await consumeEnqueued(captured, 'email', { index: 0 });
    await consumeEnqueued(captured, 'email', { index: 1 });
    return out;
  }

  /**
   * The same sends as `spreadNotifications` in `env`, and what the API then shows of them: the
   * list read 2 a page, newest first, and the metrics of the hour, with user ids named by their
   * role in the run (ids differ from run to run, the shape must not).
   */
  async function observedRun(env: Env, tag: string) {
    const users = [userInShard(0, tag), userInShard(1, tag), userInShard(0, tag), userInShard(1, tag)];
    for (const userId of users)
      await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` }, { env });
    const captured = envWithCapturedQueues({ SHARD_MAP: env.SHARD_MAP });
    const steps = [
      [users[0]],
      [users[1]],
      [users[2], users[3]],
      [users[3]],
      [{ email: `${tag}@example.com` }],
    ];
    const sent: Accepted[] = [];
    for (const recipients of steps) {
      vi.setSystemTime(Date.now() + 1000); // one second apart: the list's order is the send order
      sent.push(
        await sendNotification(captured, {
          type: 'order_shipped',
          recipients,
          channels: ['email'],
          data: { tag },
        }),
      );
    }
    await consumeEnqueued(captured, 'email', { index: 0 });
    await consumeEnqueued(captured, 'email', { index: 2 });

    const listed: NotificationView[] = [];
    let cursor: string | null = null;
    while (listed.length < steps.length) {
      const query = new URLSearchParams({ type: 'order_shipped', limit: '2', ...(cursor ? { cursor } : {}) });
      const page: { data: NotificationView[]; nextCursor: string | null } = await json(
        await api('GET', `/v1/notifications?${query}`, undefined, { env }),
      );
      listed.push(...page.data);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    const role = (userId: string | null) => (userId === null ? 'inline' : `user${users.indexOf(userId)}`);
    const list = listed.slice(0, steps.length).map((n) => ({
      step: sent.findIndex((a) => a.id === n.id),
      deliveries: n.deliveries.map((d) => ({ user: role(d.userId), channel: d.channel, status: d.status })),
    }));
    const m = await json<Metrics>(
      await api('GET', '/v1/metrics?type=order_shipped&window=1h', undefined, { env }),
    );
    const metrics = {
      accepted: m.acceptedInWindow,
      deliveries: m.deliveries.map((d) => [d.channel, d.status, d.count]),
      total: m.types.order_shipped?.total,
      email: m.channels.email.byStatus,
    };
    return { list, metrics };
  }

  it('listing and GET /v1/metrics counts across the two shards agree with the rows in the databases', async () => {
    const sent = await spreadNotifications(uniqueUser('spread'));
    // The rows, read in every shard (none at home).
    expect(
      await countAll("SELECT count(*) AS n FROM deliveries WHERE type = 'order_shipped'"),
    ).toBeGreaterThan(0);
    expect((await rowsPerDatabase("SELECT id FROM deliveries WHERE type = 'order_shipped'")).DB).toEqual([]);
    const rows = await sql<{ id: string; notification_id: string; channel: string; status: string }>(
      "SELECT id, notification_id, channel, status FROM deliveries WHERE type = 'order_shipped'",
    );
    for (const shard of allShards())
      expect(
        rows.some((r) => router().forId(r.id) === shard),
        shard.name,
      ).toBe(true);
    const notificationIds = [...new Set(rows.map((r) => r.notification_id))];
    expect(notificationIds.sort()).toEqual(sent.map((n) => n.id).sort());

    // The list, page by page (2 a page): every notification once, newest first, each whole.
    const listed: NotificationView[] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams({ type: 'order_shipped', limit: '2', ...(cursor ? { cursor } : {}) });
      const page: { data: NotificationView[]; nextCursor: string | null } = await json(
        await api('GET', `/v1/notifications?${query}`),
      );
      listed.push(...page.data);
      cursor = page.nextCursor;
    } while (cursor);
    expect(listed.map((n) => n.id).sort()).toEqual(notificationIds.sort());
    expect(new Set(listed.map((n) => n.id)).size).toBe(listed.length);
    const times = listed.map((n) => Date.parse(n.createdAt));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    for (const n of listed) {
      expect(n.deliveries.map((d) => d.id).sort(), n.id).toEqual(
        rows
          .filter((r) => r.notification_id === n.id)
          .map((r) => r.id)
          .sort(),
      );
    }

    // The metrics: per channel and status, the rows of both shards added up.
    const m = await json<Metrics>(await api('GET', '/v1/metrics?type=order_shipped&window=1h'));
    const expected = new Map<string, number>();
    for (const r of rows)
      expected.set(`${r.channel}:${r.status}`, (expected.get(`${r.channel}:${r.status}`) ?? 0) + 1);
    expect(m.deliveries.map((d) => [`${d.channel}:${d.status}`, d.count]).sort()).toEqual(
      [...expected].sort(),
    );
    expect(m.types.order_shipped?.total).toBe(rows.length);
    expect(m.channels.email.byStatus).toEqual(
      Object.fromEntries([...expected].map(([key, n]) => [key.split(':')[1], n])),
    );
    expect(m.queuedNow).toBe(rows.filter((r) => r.status === 'queued').length);
  });

  it('listing and metrics across the two shards agree with the same run on one database', async () => {
    const oneDatabase = { ...testEnv, SHARD_MAP: '0-255:DB_0' } as Env;
    expect(router(oneDatabase).shards.map((s) => s.name)).toEqual(['DB_0']);
    // Each run in an hour of its own, later than anything else in these databases.
    const start = Date.UTC(2031, 0, 1, 9, 0);
    const sharded = await atTime(start, () => observedRun(testEnv, 'sharded'));
    const single = await atTime(start + 3 * 3600_000, () => observedRun(oneDatabase, 'single'));
    expect(sharded.list.length).toBe(5);
    expect(new Set(sharded.list.flatMap((n) => n.deliveries.map((d) => d.status)))).toEqual(
      new Set(['sent', 'queued']),
    );
    expect(single).toEqual(sharded);
  });

  it('GET /v1/metrics counts a notification whose deliveries are in two shards as one accepted notification', async () => {
    const type = 'payment_notification';
    const [a, b] = [userInShard(0, 'accepted'), userInShard(1, 'accepted')];
    for (const userId of [a, b])
      await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` });
    const accepted = await sendNotification(envWithCapturedQueues(), {
      type,
      recipients: [a, b],
      channels: ['email'],
      data: { amount: '1.00' },
    });
    const parts = await rowsPerDatabase('SELECT id FROM deliveries WHERE notification_id = ?', accepted.id);
    expect([parts.DB_0?.length, parts.DB_1?.length]).toEqual([1, 1]);
    const notifications = new Set(
      (
        await sql<{ notification_id: string }>('SELECT notification_id FROM deliveries WHERE type = ?', type)
      ).map((r) => r.notification_id),
    );
    const m = await json<Metrics>(await api('GET', `/v1/metrics?type=${type}&window=1h`));
    expect(m.acceptedInWindow).toBe(notifications.size);
  });
});

describe('shards: work that goes database by database', () => {
  it('the sweeper and the reaper reach every shard', async () => {
    const captured = envWithCapturedQueues();
    const at = unusedCronTime(true);
    // Stuck `created` for 10 minutes (the sweeper), and `queued` untouched for 3 days (the reaper).
    const stuck = [0, 1].map((index) =>
      insertDeliveries({ count: 2, atMs: at - 10 * 60_000, channel: 'sms', bucket: bucketInShard(index) }),
    );
    const lost = [0, 1].map((index) =>
      insertDeliveries({
        count: 2,
        atMs: at - 3 * 24 * 3600_000,
        channel: 'push',
        status: 'queued',
        bucket: bucketInShard(index),
      }),
    );
    const stuckIds = (await Promise.all(stuck)).flat();
    const lostIds = (await Promise.all(lost)).flat();
    expect(stuckIds.map((id) => router().forId(id).name)).toEqual(['DB_0', 'DB_0', 'DB_1', 'DB_1']);
    await atTime(at, () => runCron(captured.env, at));
    expect([...captured.queues.sms.ids()].sort()).toEqual([...stuckIds].sort());
    expect([...captured.queues.push.ids()].sort()).toEqual([...lostIds].sort());
    for (const status of (await statusesOf([...stuckIds, ...lostIds])).values())
      expect(status).toBe('queued');
  });

  it('dead letters in both shards are listed together and replayed, each claimed in its shard', async () => {
    const captured = envWithCapturedQueues();
    const ids: string[] = [];
    for (const index of [0, 1]) {
      const userId = userInShard(index, 'replay');
      await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` });
      const accepted = await sendNotification(captured, {
        type: 'security_alert',
        recipients: [userId],
        channels: ['email'],
      });
      ids.push(accepted.deliveries[0]?.id ?? '');
    }
    expect(ids.map((id) => router().forId(id).name)).toEqual(['DB_0', 'DB_1']);
    await deadLetter(captured.env, 'email', ids);
    const listed = await json<{ data: { deliveryId: string }[] }>(
      await api('GET', '/v1/admin/dead-letters?channel=email&limit=1000'),
    );
    expect(listed.data.map((d) => d.deliveryId)).toEqual(expect.arrayContaining(ids));

    const replay = await api('POST', '/v1/admin/dead-letters/replay', { ids }, { env: captured.env });
    expect(replay.status).toBe(200);
    const body = await json<{ replayed: number; ids: string[] }>(replay);
    expect(body.replayed).toBe(2);
    expect([...body.ids].sort()).toEqual([...ids].sort());
    for (const id of ids) {
      expect(await delivery(id)).toMatchObject({ status: 'queued', attempts: 0 });
      const claimed = await dbOfDelivery(id)
        .prepare('SELECT replayed_at FROM dead_letters WHERE delivery_id = ?')
        .bind(id)
        .first<{ replayed_at: number | null }>();
      expect(claimed?.replayed_at, id).not.toBeNull();
    }
    expect(captured.queues.email.ids()).toEqual(expect.arrayContaining(ids));
    // Replayed once: again, nothing.
    expect(
      await json(await api('POST', '/v1/admin/dead-letters/replay', { ids }, { env: captured.env })),
    ).toEqual({ replayed: 0, ids: [] });
  });

  it('a provider callback batch naming deliveries in both shards moves each in its shard', async () => {
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const spki = new Uint8Array((await crypto.subtle.exportKey('spki', pair.publicKey)) as ArrayBuffer);
    const env = { ...testEnv, SENDGRID_WEBHOOK_PUBLIC_KEY: base64(spki) } as Env;
    const ids = [
      await sentDelivery({ channel: 'email', email: 'cb0@example.com' }, 'test', userInShard(0, 'cb')),
      await sentDelivery({ channel: 'email', email: 'cb1@example.com' }, 'test', userInShard(1, 'cb')),
    ];
    expect(ids.map((id) => router().forId(id).name)).toEqual(['DB_0', 'DB_1']);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const ts = Number(timestamp);
    const body = JSON.stringify([
      { event: 'delivered', delivery_id: ids[0], timestamp: ts },
      { event: 'delivered', delivery_id: ids[1], timestamp: ts },
      { event: 'open', delivery_id: ids[1], timestamp: ts },
    ]);
    const raw = new Uint8Array(
      await crypto.subtle.sign(
        { name: 'ECDSA', hash: 'SHA-256' },
        pair.privateKey,
        new TextEncoder().encode(timestamp + body),
      ),
    );
    const res = await api('POST', '/v1/webhooks/sendgrid', body, {
      key: null,
      env,
      headers: {
        'Content-Type': 'application/json',
        'X-Twilio-Email-Event-Webhook-Signature': base64(p1363ToDer(raw)),
        'X-Twilio-Email-Event-Webhook-Timestamp': timestamp,
      },
    });
    expect(res.status).toBe(200);
    expect((await delivery(ids[0] ?? '')).status).toBe('delivered');
    expect((await delivery(ids[1] ?? '')).status).toBe('opened');
    for (const id of ids)
      expect(await countsPerDatabase('SELECT id FROM deliveries WHERE id = ?', id)).toEqual(
        onlyIn(router().forId(id).name, 1),
      );
  });

  it('open and click tracking record on a delivery in either shard', async () => {
    const services = createServices(testEnv);
    for (const index of [0, 1]) {
      const id = await sentDelivery(
        { channel: 'email', email: 'track@example.com' },
        'sandbox',
        userInShard(index, 'tr'),
      );
      expect(router().forId(id).name).toBe(NAMES[index]);
      const html = await trackEmail(services, {
        deliveryId: id,
        html: '<html><body><a href="https://shop.example/x">x</a></body></html>',
      });
      const click = /href="([^"]*)"/.exec(html)?.[1] ?? '';
      const pixel = /<img src="([^"]*)"/.exec(html)?.[1] ?? '';
      const path = (url: string) => new URL(url).pathname;
      expect((await api('GET', path(pixel), undefined, { key: null })).status).toBe(200);
      expect((await delivery(id)).status).toBe('opened');
      expect((await api('GET', path(click), undefined, { key: null })).status).toBe(302);
      expect((await delivery(id)).history.map((h) => h.status)).toEqual([
        'created',
        'sent',
        'opened',
        'clicked',
      ]);
    }
  });
});

describe('shards: key rotation', () => {
  /** Pages through POST /v1/admin/rotate-key under `env` until nextCursor is null; the cursors seen. */
  async function rotateAll(env: Env, table: 'contacts' | 'deliveries') {
    const cursors: string[] = [];
    let cursor = '';
    let rotated = 0;
    for (;;) {
      const page = await json<{ rotated: number; nextCursor: string | null }>(
        await api('POST', '/v1/admin/rotate-key', { table, cursor, limit: 3 }, { env }),
      );
      rotated += page.rotated;
      if (!page.nextCursor) break;
      cursors.push(page.nextCursor);
      cursor = page.nextCursor;
    }
    return { cursors, rotated };
  }

  it('rotation pages through every shard, its cursor naming the shard, and re-encrypts rows in both', async () => {
    const key = `new2:${btoa(String.fromCharCode(...new Uint8Array(32).fill(9)))}`;
    const rotated = { ...testEnv, DATA_ENCRYPTION_KEY: `${key},${testEnv.DATA_ENCRYPTION_KEY}` } as Env;
    const back = { ...testEnv, DATA_ENCRYPTION_KEY: `${testEnv.DATA_ENCRYPTION_KEY},${key}` } as Env;
    const users = [userInShard(0, 'rot'), userInShard(1, 'rot')];
    for (const userId of users)
      await api('PUT', `/v1/contacts/${userId}`, { email: `${userId}@example.com` });
    const accepted = await sendNotification(envWithCapturedQueues(), {
      type: 'security_alert',
      recipients: users,
      channels: ['email'],
    });
    try {
      for (const table of ['contacts', 'deliveries'] as const) {
        const { cursors, rotated: count } = await rotateAll(rotated, table);
        for (const cursor of cursors) expect(cursor).toMatch(/^[01]\|/);
        expect(cursors.some((c) => c.startsWith('1|'))).toBe(true);
        expect(count).toBeGreaterThanOrEqual(users.length);
      }
      for (const userId of users) {
        const row = await router()
          .forUser(userId)
          .db.prepare('SELECT email FROM contacts WHERE user_id = ?')
          .bind(userId)
          .first<{ email: string }>();
        expect(row?.email, userId).toMatch(/^enc:v1:new2:/);
      }
      for (const { id } of accepted.deliveries) {
        const row = await dbOfDelivery(id)
          .prepare('SELECT address FROM deliveries WHERE id = ?')
          .bind(id)
          .first<{ address: string }>();
        expect(row?.address, id).toMatch(/^enc:v1:new2:/);
      }
      const read = await api('GET', `/v1/notifications/${accepted.id}`, undefined, { env: rotated });
      expect(read.status).toBe(200);
    } finally {
      // Back under the test key, so the rows read as before.
      await rotateAll(back, 'contacts');
      await rotateAll(back, 'deliveries');
    }
    expect((await api('GET', `/v1/contacts/${users[1]}`)).status).toBe(200);
  });
});
