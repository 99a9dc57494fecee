import { describe, expect, it, vi } from 'vitest';
import type { QueueMessage, TopicPageMessage } from '../../src/queue/messages';
import { TopicSendsRepo } from '../../src/storage/topics-repo';
import { api, json, uniqueUser } from '../helpers/api';
import {
  atTime,
  type CapturedEnv,
  envWithCapturedQueues,
  runConsumer,
  sendNotification,
} from '../helpers/queues';
import { allShards, homeDb, shardIndexOfUser, sql } from '../helpers/shards';

const uniqueTopic = () => `t_${uniqueUser('topic')}`;

async function createTopic(env: CapturedEnv['env'], name?: string): Promise<string> {
  const key = uniqueTopic();
  const res = await api('PUT', `/v1/topics/${key}`, name ? { name } : {}, { env });
  expect(res.status).toBe(201);
  return key;
}

async function subscribeAll(env: CapturedEnv['env'], key: string, userIds: readonly string[]): Promise<void> {
  for (let i = 0; i < userIds.length; i += 1000) {
    const res = await api(
      'POST',
      `/v1/topics/${key}/subscribers`,
      { userIds: userIds.slice(i, i + 1000) },
      { env },
    );
    expect(res.status, await res.clone().text()).toBe(200);
  }
}

/** Runs the topics queue's consumer until no page is left; `twice`: every page is delivered twice. */
async function expandAll(captured: CapturedEnv, { twice = false } = {}): Promise<number> {
  let pages = 0;
  for (;;) {
    const bodies = captured.topics.sent.splice(0).map((m) => m.body as unknown as TopicPageMessage);
    if (bodies.length === 0) return pages;
    pages += bodies.length;
    for (let i = 0; i < bodies.length; i += 4) {
      const batch = bodies.slice(i, i + 4);
      const { result } = await runConsumer(captured.env, 'herald-topics', batch as unknown as QueueMessage[]);
      expect(result.retryMessages).toEqual([]);
      if (twice) {
        await runConsumer(captured.env, 'herald-topics', batch as unknown as QueueMessage[]);
        // The repeat's continuation pages are the same pages again: keep one copy of each.
        const seen = new Set(captured.topics.sent.map((m) => JSON.stringify(m.body)));
        captured.topics.sent.splice(
          0,
          captured.topics.sent.length,
          ...[...seen].map((b) => ({ body: JSON.parse(b) })),
        );
      }
    }
  }
}

/** The users a notification's delivery rows are for, with how many rows each has. */
async function rowsPerUser(notificationId: string): Promise<Map<string, number>> {
  const rows = await sql<{ user_id: string; n: number }>(
    'SELECT user_id, count(*) AS n FROM deliveries WHERE notification_id = ? GROUP BY user_id',
    notificationId,
  );
  const out = new Map<string, number>();
  for (const row of rows) out.set(row.user_id, (out.get(row.user_id) ?? 0) + row.n);
  return out;
}

describe('topics: the API', () => {
  it('creates, renames, reads, lists and deletes a topic', async () => {
    const { env } = envWithCapturedQueues();
    const key = uniqueTopic();
    const created = await api('PUT', `/v1/topics/${key}`, { name: 'Project 42' }, { env });
    expect(created.status).toBe(201);
    expect(await json(created)).toMatchObject({ key, name: 'Project 42' });
    const again = await api('PUT', `/v1/topics/${key}`, {}, { env });
    expect(again.status).toBe(200);
    expect(await json(again)).toMatchObject({ key, name: 'Project 42' });
    expect(await json(await api('PUT', `/v1/topics/${key}`, { name: 'Renamed' }, { env }))).toMatchObject({
      name: 'Renamed',
    });
    await subscribeAll(env, key, ['u_a', 'u_b']);
    expect(await json(await api('GET', `/v1/topics/${key}`, undefined, { env }))).toMatchObject({
      key,
      name: 'Renamed',
      subscribers: 2,
    });
    const listed = await json<{ data: { key: string }[] }>(
      await api('GET', '/v1/topics?limit=1000', undefined, { env }),
    );
    expect(listed.data.map((t) => t.key)).toContain(key);

    expect((await api('DELETE', `/v1/topics/${key}`, undefined, { env })).status).toBe(204);
    expect((await api('GET', `/v1/topics/${key}`, undefined, { env })).status).toBe(404);
    expect(await sql('SELECT * FROM topic_subscriptions WHERE topic_key = ?', key)).toEqual([]);
    expect((await api('DELETE', `/v1/topics/${key}`, undefined, { env })).status).toBe(404);
  });

  it('answers 201 only for the call that created the topic, even within one millisecond', async () => {
    const { env } = envWithCapturedQueues();
    const key = uniqueTopic();
    const statuses = await atTime(Date.now(), async () => [
      (await api('PUT', `/v1/topics/${key}`, { name: 'A' }, { env })).status,
      (await api('PUT', `/v1/topics/${key}`, { name: 'A' }, { env })).status,
    ]);
    expect(statuses).toEqual([201, 200]);
  });

  it('pages topics and subscribers with a cursor', async () => {
    const { env } = envWithCapturedQueues();
    const key = await createTopic(env);
    const users = Array.from({ length: 7 }, (_, i) => `page_user_${i}`);
    await subscribeAll(env, key, users);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${cursor}` : '';
      const page = await json<{ data: { userId: string }[]; nextCursor: string | null }>(
        await api('GET', `/v1/topics/${key}/subscribers?limit=3${query}`, undefined, { env }),
      );
      expect(page.data.length).toBeLessThanOrEqual(3);
      seen.push(...page.data.map((s) => s.userId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...users].sort());
  });

  it('subscribes idempotently, up to 1,000 per call, and unsubscribes', async () => {
    const { env } = envWithCapturedQueues();
    const key = await createTopic(env);
    const users = [uniqueUser(), uniqueUser(), uniqueUser()];
    const first = await api('POST', `/v1/topics/${key}/subscribers`, { userIds: users }, { env });
    expect(await json(first)).toEqual({ key, added: 3 });
    const repeat = await api(
      'POST',
      `/v1/topics/${key}/subscribers`,
      { userIds: [...users, users[0]] },
      { env },
    );
    expect(await json(repeat)).toEqual({ key, added: 0 });
    const tooMany = await api(
      'POST',
      `/v1/topics/${key}/subscribers`,
      { userIds: Array.from({ length: 1001 }, (_, i) => `u${i}`) },
      { env },
    );
    expect(tooMany.status).toBe(422);
    expect(JSON.stringify(await json(tooMany))).toContain('userIds');
    const removed = await api('DELETE', `/v1/topics/${key}/subscribers`, { userIds: [users[0]] }, { env });
    expect(await json(removed)).toEqual({ key, removed: 1 });
    expect(await json(await api('GET', `/v1/topics/${key}`, undefined, { env }))).toMatchObject({
      subscribers: 2,
    });
    const missing = await api('POST', `/v1/topics/${uniqueTopic()}/subscribers`, { userIds: users }, { env });
    expect(missing.status).toBe(404);
  });

  it('refuses a send to a topic that does not exist, naming the entry, and writes nothing', async () => {
    const captured = envWithCapturedQueues();
    const user = uniqueUser();
    const res = await api(
      'POST',
      '/v1/notifications',
      { type: 'new_comment', recipients: [user, { topic: uniqueTopic() }] },
      { env: captured.env },
    );
    expect(res.status).toBe(422);
    const body = await json<{ error: { code: string; details: { field: string }[] } }>(res);
    expect(body.error.code).toBe('unknown_topic');
    expect(body.error.details[0]?.field).toBe('recipients[1].topic');
    expect(captured.topics.sent).toEqual([]);
    expect(captured.queues.inapp.sent).toEqual([]);
    expect(await sql('SELECT id FROM deliveries WHERE user_id = ?', user)).toEqual([]);
  });
});

describe('topics: a send expands through the queue', () => {
  it('reaches each of 10,000 subscribers on two shards exactly once; the excluded and the actor none', async () => {
    const captured = envWithCapturedQueues();
    const key = await createTopic(captured.env);
    const users = Array.from({ length: 10_000 }, (_, i) => `fan_${key}_${String(i).padStart(5, '0')}`);
    await subscribeAll(captured.env, key, users);
    const excluded = [users[17], users[5000], users[9999]] as string[];
    const actor = users[42] as string;
    const accepted = await sendNotification(captured, {
      type: 'new_comment',
      recipients: [{ topic: key, exclude: excluded }],
      actor,
      data: { author: 'Ada', comment: 'Ship it', url: '/p/42' },
    });
    expect(accepted.deliveries).toEqual([]);
    expect(accepted).toMatchObject({ topics: [key] });
    expect(captured.topics.sent.length).toBe(allShards().length);

    // Every page delivered twice (at-least-once): still one row and one queued id per subscriber.
    const pages = await expandAll(captured, { twice: true });
    expect(pages).toBeGreaterThan(10_000 / 250);
    const perUser = await rowsPerUser(accepted.id);
    const expected = users.filter((u) => u !== actor && !excluded.includes(u));
    expect(perUser.size).toBe(expected.length);
    expect([...perUser.values()].every((n) => n === 1)).toBe(true);
    for (const u of [...excluded, actor]) expect(perUser.has(u)).toBe(false);
    const queued = captured.queues.inapp.ids();
    expect(new Set(queued).size).toBe(expected.length);
    expect(queued.length).toBe(expected.length);
    // Both shards hold subscribers' rows, each in its user's database.
    const shardsUsed = new Set(expected.map((u) => shardIndexOfUser(u)));
    expect(shardsUsed.size).toBe(2);

    // A read lists the first 1,000 deliveries and says there are more; the pages hold them all.
    const read = await json<{ deliveries: unknown[]; deliveriesTruncated?: boolean }>(
      await api('GET', `/v1/notifications/${accepted.id}`, undefined, { env: captured.env }),
    );
    expect(read.deliveries.length).toBe(1000);
    expect(read.deliveriesTruncated).toBe(true);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${cursor}` : '';
      const page = await json<{ data: { id: string; userId: string }[]; nextCursor: string | null }>(
        await api('GET', `/v1/notifications/${accepted.id}/deliveries?limit=1000${query}`, undefined, {
          env: captured.env,
        }),
      );
      paged.push(...page.data.map((d) => d.userId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged.length).toBe(expected.length);
    expect(new Set(paged)).toEqual(new Set(expected));
  });

  it('reaches a user in two topics of one notification once, and a user named directly only directly', async () => {
    const captured = envWithCapturedQueues();
    const [a, b] = [await createTopic(captured.env), await createTopic(captured.env)];
    const both = uniqueUser('both');
    const direct = uniqueUser('direct');
    const onlyA = uniqueUser('only_a');
    await subscribeAll(captured.env, a, [both, direct, onlyA]);
    await subscribeAll(captured.env, b, [both, direct]);
    const accepted = await sendNotification(captured, {
      type: 'new_comment',
      recipients: [direct, { topic: a }, { topic: b }],
      data: { author: 'Ada', comment: 'Hi', url: '/p/1' },
    });
    expect(accepted.deliveries.map((d) => d.userId)).toEqual([direct]);
    await expandAll(captured);
    const perUser = await rowsPerUser(accepted.id);
    expect(Object.fromEntries(perUser)).toEqual({ [both]: 1, [direct]: 1, [onlyA]: 1 });

    // The notification reads whole: its direct delivery and the subscribers'.
    const read = await json<{ deliveries: { userId: string }[] }>(
      await api('GET', `/v1/notifications/${accepted.id}`, undefined, { env: captured.env }),
    );
    expect(read.deliveries.map((d) => d.userId).sort()).toEqual([both, direct, onlyA].sort());
  });

  it('answers for a send before its expansion, and a repeated id accepts nothing new', async () => {
    const captured = envWithCapturedQueues();
    const key = await createTopic(captured.env);
    await subscribeAll(captured.env, key, [uniqueUser(), uniqueUser()]);
    const id = `topic-send-${uniqueUser()}`;
    const body = {
      id,
      type: 'new_comment',
      recipients: [{ topic: key }],
      data: { author: 'A', comment: 'c', url: '/' },
    };
    await sendNotification(captured, body);
    const read = await api('GET', `/v1/notifications/${id}`, undefined, { env: captured.env });
    expect(read.status).toBe(200);
    expect(await json(read)).toMatchObject({ id, type: 'new_comment', deliveries: [] });

    const replay = await api('POST', '/v1/notifications', body, { env: captured.env });
    expect(replay.status).toBe(202);
    expect(replay.headers.get('Idempotent-Replayed')).toBe('true');
    expect(await json(replay)).toEqual({ id, topics: [key], deliveries: [] });
    expect(captured.topics.sent.length).toBe(allShards().length);
    // After the expansion too: the answer is the first one, never the subscribers' deliveries.
    await expandAll(captured);
    const later = await api('POST', '/v1/notifications', body, { env: captured.env });
    expect(await json(later)).toEqual({ id, topics: [key], deliveries: [] });
    expect(captured.topics.sent).toEqual([]);
    const conflict = await api(
      'POST',
      '/v1/notifications',
      { ...body, data: { other: 1 } },
      { env: captured.env },
    );
    expect(conflict.status).toBe(409);
  });

  it('restarts once when the database layout changed under it, and still reaches each subscriber once', async () => {
    const captured = envWithCapturedQueues();
    const key = await createTopic(captured.env);
    const users = Array.from({ length: 600 }, (_, i) => `relayout_${key}_${String(i).padStart(4, '0')}`);
    await subscribeAll(captured.env, key, users);
    const accepted = await sendNotification(captured, {
      type: 'new_comment',
      recipients: [{ topic: key }],
      data: { author: 'A', comment: 'c', url: '/' },
    });
    // As if a bucket moved after the send was accepted: its record and pages name the old layout.
    await homeDb(captured.env)
      .prepare("UPDATE topic_sends SET layout = 'before-the-move' WHERE notification_id = ?")
      .bind(accepted.id)
      .run();
    const stale = captured.topics.sent
      .splice(0)
      .map((m) => ({ ...(m.body as unknown as TopicPageMessage), layout: 'before-the-move' }));
    await runConsumer(captured.env, 'herald-topics', stale as unknown as QueueMessage[]);
    // One walk restarted under the current layout (one page per database); the others stopped.
    expect(captured.topics.sent.length).toBe(allShards().length);
    expect(captured.topics.sent.every((m) => (m.body as unknown as TopicPageMessage).after === null)).toBe(
      true,
    );
    expect((await rowsPerUser(accepted.id)).size).toBe(0);
    await expandAll(captured);
    const perUser = await rowsPerUser(accepted.id);
    expect(perUser.size).toBe(users.length);
    expect([...perUser.values()].every((n) => n === 1)).toBe(true);
  });

  it('cancels every delivery of a send larger than a read lists', async () => {
    const captured = envWithCapturedQueues();
    const key = await createTopic(captured.env);
    await subscribeAll(
      captured.env,
      key,
      Array.from({ length: 1200 }, (_, i) => `cancel_${key}_${i}`),
    );
    const accepted = await sendNotification(captured, {
      type: 'new_comment',
      recipients: [{ topic: key }],
      data: { author: 'A', comment: 'c', url: '/' },
    });
    await expandAll(captured);
    const res = await api('DELETE', `/v1/notifications/${accepted.id}`, undefined, { env: captured.env });
    expect(res.status).toBe(200);
    expect((await json<{ canceled: string[] }>(res)).canceled.length).toBe(1200);
    const statuses = await sql<{ status: string; n: number }>(
      'SELECT status, count(*) AS n FROM deliveries WHERE notification_id = ? GROUP BY status',
      accepted.id,
    );
    expect(statuses.reduce((n, r) => n + (r.status === 'canceled' ? r.n : 0), 0)).toBe(1200);
    expect(statuses.every((r) => r.status === 'canceled')).toBe(true);
  });

  it('calls off the rows of a page that was planned while the notification was being canceled', async () => {
    const captured = envWithCapturedQueues();
    const key = await createTopic(captured.env);
    await subscribeAll(captured.env, key, [uniqueUser(), uniqueUser()]);
    const accepted = await sendNotification(captured, {
      type: 'new_comment',
      recipients: [{ topic: key }],
      data: { author: 'A', comment: 'c', url: '/' },
    });
    // Every page reads the send as it was before the cancel landed, and writes its rows after it.
    const read = TopicSendsRepo.prototype.get;
    const spy = vi.spyOn(TopicSendsRepo.prototype, 'get').mockImplementation(async function (
      this: TopicSendsRepo,
      id,
    ) {
      const send = await read.call(this, id);
      await homeDb(captured.env)
        .prepare('UPDATE topic_sends SET canceled_at = ? WHERE notification_id = ?')
        .bind(Date.now(), id)
        .run();
      return send && { ...send, canceledAtMs: null };
    });
    try {
      await expandAll(captured);
    } finally {
      spy.mockRestore();
    }
    const statuses = await sql<{ status: string }>(
      'SELECT status FROM deliveries WHERE notification_id = ?',
      accepted.id,
    );
    expect(statuses.length).toBe(2);
    expect(statuses.every((r) => r.status === 'canceled')).toBe(true);
  });

  it('stops expanding once the notification is canceled', async () => {
    const captured = envWithCapturedQueues();
    const key = await createTopic(captured.env);
    await subscribeAll(captured.env, key, [uniqueUser(), uniqueUser(), uniqueUser()]);
    const accepted = await sendNotification(captured, {
      type: 'new_comment',
      recipients: [{ topic: key }],
      data: { author: 'A', comment: 'c', url: '/' },
    });
    expect(
      (await api('DELETE', `/v1/notifications/${accepted.id}`, undefined, { env: captured.env })).status,
    ).toBe(200);
    await expandAll(captured);
    expect((await rowsPerUser(accepted.id)).size).toBe(0);
    expect(captured.queues.inapp.sent).toEqual([]);
  });

  it('a page whose send record is not written yet is retried, then let go', async () => {
    const captured = envWithCapturedQueues();
    const page: TopicPageMessage = {
      v: 1,
      notificationId: `ntf_missing_${uniqueUser()}`,
      database: 'DB_0',
      after: null,
      layout: 'x',
      at: Date.now(),
    };
    const fresh = await runConsumer(captured.env, 'herald-topics', [page as unknown as QueueMessage]);
    expect(fresh.result.retryMessages.length).toBe(1);
    const old = await runConsumer(captured.env, 'herald-topics', [
      { ...page, at: Date.now() - 3_600_000 } as unknown as QueueMessage,
    ]);
    expect(old.result.retryMessages).toEqual([]);
    expect(old.result.explicitAcks.length).toBe(1);
  });

  it('a page back from the dead-letter queue is handed to the topics queue again, never dropped', async () => {
    const captured = envWithCapturedQueues();
    const page = { v: 1, notificationId: 'ntf_x', database: 'DB_0', after: 'u', layout: 'x', at: 1 };
    const { result } = await runConsumer(captured.env, 'herald-topics-dlq', [
      page as unknown as QueueMessage,
    ]);
    expect(result.explicitAcks.length).toBe(1);
    expect(captured.topics.sent.map((m) => m.body)).toEqual([page]);
    captured.topics.fail = true;
    const refused = await runConsumer(captured.env, 'herald-topics-dlq', [page as unknown as QueueMessage]);
    expect(refused.result.retryMessages.length).toBe(1);
  });
});

describe('topics: counters', () => {
  it("counts a topic send once as accepted and each subscriber's delivery once, pages run twice", async () => {
    const captured = envWithCapturedQueues();
    const type = `topic_ctr_${uniqueUser('t')}`.toLowerCase().replace(/[^a-z0-9_-]/g, '_');
    const template = { parts: { title: 'New comment', body: '{{ comment }}' } };
    expect((await api('PUT', `/v1/templates/${type}/inapp`, template, { env: captured.env })).status).toBe(
      200,
    );
    const key = await createTopic(captured.env);
    await subscribeAll(captured.env, key, [uniqueUser(), uniqueUser(), uniqueUser()]);
    await sendNotification(captured, { type, recipients: [{ topic: key }], data: { comment: 'c' } });
    await expandAll(captured, { twice: true });
    const text = await (await api('GET', `/metrics?type=${type}`, undefined, { env: captured.env })).text();
    const sample = (name: string, status?: string) =>
      text
        .split('\n')
        .find(
          (line) =>
            line.startsWith(`${name}{`) &&
            line.includes(`type="${type}"`) &&
            (!status || line.includes(`status="${status}"`)),
        )
        ?.split(' ')
        .at(-1);
    expect(sample('herald_notifications_accepted_total')).toBe('1');
    expect(sample('herald_deliveries_total', 'created')).toBe('3');
    expect(sample('herald_deliveries_total', 'queued')).toBe('3');
  });
});

describe('topics: erasure', () => {
  it('removes the user from every topic, and the export lists their topics before', async () => {
    const { env } = envWithCapturedQueues();
    const [a, b] = [await createTopic(env), await createTopic(env)];
    const user = uniqueUser();
    await subscribeAll(env, a, [user]);
    await subscribeAll(env, b, [user, 'someone_else']);
    const exported = await json<{ topics: string[] }>(
      await api('GET', `/v1/contacts/${user}/export`, undefined, { env }),
    );
    expect(exported.topics.sort()).toEqual([a, b].sort());
    expect((await api('DELETE', `/v1/contacts/${user}`, undefined, { env })).status).toBe(204);
    expect(await sql('SELECT * FROM topic_subscriptions WHERE user_id = ?', user)).toEqual([]);
    expect(await json(await api('GET', `/v1/topics/${b}`, undefined, { env }))).toMatchObject({
      subscribers: 1,
    });
  });
});
