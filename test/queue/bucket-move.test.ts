import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Env, parseEnv } from '../../src/config/env';
import { bucketOfKey } from '../../src/domain/shards';
import { idBoundAt } from '../../src/lib/ids';
import type { QueueMessage } from '../../src/queue/messages';
import { createServices } from '../../src/services/container';
import { ANNOUNCE_MS, SWITCH_SETTLE_MS } from '../../src/services/operations/bucket-move';
import { BucketRows } from '../../src/storage/bucket-rows';
import { api, json, testEnv, uniqueUser } from '../helpers/api';
import { insertDeliveries } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import { type Accepted, atTime, type CapturedEnv, resendSendgridEnv, runConsumer } from '../helpers/queues';

/** The router the Worker itself uses with this env (one per parsed env object). */
function router(env: Env) {
  return createServices(parseEnv(env)).router;
}

/**
 * Moving a bucket of users to another database (`POST /v1/admin/shards/move`, what
 * `npm run shards:move` runs) while notifications keep coming and consumers keep sending: every
 * delivery ends with exactly one row, in the bucket's new database, and went out exactly once.
 */

/** Each test moves its own bucket: they share the databases. */
const BUCKET = 77;
const ABORTED = 78;
const REFUSED = 79;
type MoveAnswer = {
  bucket: number;
  from: string;
  to: string;
  phase: string;
  more: boolean;
  waitSeconds?: number;
};

afterEach(() => {
  vi.restoreAllMocks();
});

/** Users whose data lives in `bucket`, none used by another test. */
function usersIn(bucket: number, count: number): string[] {
  const users: string[] = [];
  while (users.length < count) {
    const user = uniqueUser('mover');
    if (bucketOfKey(user) === bucket) users.push(user);
  }
  return users;
}

/** A user outside `bucket`. */
function userOutside(bucket: number): string {
  for (;;) {
    const user = uniqueUser('stayer');
    if (bucketOfKey(user) !== bucket) return user;
  }
}

/** Resend answers every email; the sends, counted by delivery (Resend's Idempotency-Key). */
function countSends(): Map<string, number> {
  const sends = new Map<string, number>();
  fakeFetch((_url, init) => {
    const id = new Headers(init?.headers).get('Idempotency-Key') ?? '';
    sends.set(id, (sends.get(id) ?? 0) + 1);
    return Response.json({ id: `re_${id}` });
  });
  return sends;
}

class Traffic {
  clock = Date.now();
  readonly accepted: Accepted[] = [];

  constructor(
    readonly captured: CapturedEnv,
    readonly bucket: number,
  ) {}

  get env(): Env {
    return this.captured.env;
  }

  at<T>(work: () => Promise<T>): Promise<T> {
    return atTime(this.clock, work);
  }

  /** One notification to these users, by email; the answer's status. */
  async send(users: readonly string[]): Promise<Response> {
    const body = {
      type: 'security_alert',
      recipients: users.map((userId) => ({ userId, email: `${userId}@example.com` })),
    };
    const res = await this.at(() => api('POST', '/v1/notifications', body, { env: this.env }));
    if (res.status === 202) this.accepted.push(await json<Accepted>(res.clone()));
    return res;
  }

  /** Takes every message on the email queue (what the consumer would get next). */
  take(): QueueMessage[] {
    return this.captured.queues.email.sent.splice(0).map((m) => m.body);
  }

  /** Runs the email consumer on these messages with `env` (the Worker's, or a stale one). */
  consume(bodies: QueueMessage[], env: Env = this.env) {
    return this.at(() => runConsumer(env, 'herald-email', bodies));
  }

  async move(step: string, to: string): Promise<MoveAnswer> {
    const res = await this.at(() =>
      api('POST', '/v1/admin/shards/move', { bucket: this.bucket, to, step }, { env: this.env }),
    );
    expect(res.status, await res.clone().text()).toBe(200);
    return json<MoveAnswer>(res);
  }

  deliveryIds(): string[] {
    return this.accepted.flatMap((a) => a.deliveries.map((d) => d.id));
  }
}

/** Where each delivery's rows are, by database name. */
async function rowsByDatabase(env: Env, ids: readonly string[]) {
  const found = new Map<string, string[]>();
  for (const shard of router(env).databases) {
    const { results } = await shard.db
      .prepare(`SELECT id FROM deliveries WHERE id IN (${ids.map(() => '?').join(',')})`)
      .bind(...ids)
      .all<{ id: string }>();
    for (const { id } of results) found.set(id, [...(found.get(id) ?? []), shard.name]);
  }
  return found;
}

describe('moving a bucket to another database', () => {
  it('under traffic loses and duplicates nothing', async () => {
    const traffic = new Traffic(resendSendgridEnv(), BUCKET);
    const sends = countSends();
    const source = router(traffic.env).forBucket(BUCKET);
    const target = router(traffic.env).shards.find((s) => s !== source);
    if (!target) throw new Error('the tests run with two shards');
    const movers = usersIn(BUCKET, 3);
    const stayer = userOutside(BUCKET);

    // Before: a contact, one notification sent, one accepted with its message still on the queue.
    const contact = { email: 'kept@example.com', locale: 'en-GB' };
    const contactPath = `/v1/contacts/${movers[0]}`;
    expect((await traffic.at(() => api('PUT', contactPath, contact, { env: traffic.env }))).status).toBe(200);
    const keyRow = { user_id: movers[0], bucket: BUCKET, wrapped: 'enc:v1:test1:a-user-key', created_at: 1 };
    await source.db
      .prepare('INSERT INTO user_keys (user_id, bucket, wrapped, created_at) VALUES (?, ?, ?, ?)')
      .bind(keyRow.user_id, keyRow.bucket, keyRow.wrapped, keyRow.created_at)
      .run();
    const topic = `move_${BUCKET}_${Date.now().toString(36)}`;
    expect((await traffic.at(() => api('PUT', `/v1/topics/${topic}`, {}, { env: traffic.env }))).status).toBe(
      201,
    );
    const follow = (userIds: string[]) =>
      traffic.at(() => api('POST', `/v1/topics/${topic}/subscribers`, { userIds }, { env: traffic.env }));
    expect((await follow([movers[0] ?? ''])).status).toBe(200);
    expect((await traffic.send([...movers, stayer])).status).toBe(202);
    await traffic.consume(traffic.take());
    expect((await traffic.send(movers)).status).toBe(202);
    const waiting = traffic.take();

    // Announced: writers refuse the bucket before writing anything; its deliveries wait unsent.
    expect(await traffic.move('lock', target.name)).toMatchObject({ phase: 'locking', more: true });
    const refused = await traffic.send([movers[0] ?? '']);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('Retry-After')).toBe('10');
    expect(await json(refused)).toMatchObject({ error: { code: 'bucket_moving' } });
    expect((await traffic.send([stayer])).status).toBe(202);
    await traffic.consume(waiting);
    expect(sends.size).toBe(4); // the first notification's four deliveries, nothing more
    const deferred = traffic.take();
    expect(deferred.flatMap((m) => m.deliveryIds)).toEqual(
      expect.arrayContaining(waiting[0]?.deliveryIds ?? []),
    );

    // Locked in both databases.
    traffic.clock += ANNOUNCE_MS;
    expect(await traffic.move('lock', target.name)).toMatchObject({ phase: 'locked', more: false });

    // The locked rows refuse every write, whoever routes there.
    const locked = await traffic.at(() =>
      api('PUT', contactPath, { email: 'lost@example.com' }, { env: traffic.env }),
    );
    expect(locked.status).toBe(503);
    expect(await json(locked)).toMatchObject({ error: { code: 'bucket_moving' } });
    expect((await follow([movers[1] ?? ''])).status).toBe(503);

    // A Worker that never read the move (its read of the home database failed, say) sends and
    // tries to record: the source's lock refuses the outcome, which carries on with its message.
    const stale = { ...traffic.env } as Env;
    await router(stale).refresh(traffic.clock);
    router(stale).apply([]);
    await traffic.consume(deferred, stale);
    expect(sends.size).toBe(8); // the waiting three and the stayer's, once each
    const carried = traffic.take();
    expect(carried.flatMap((m) => Object.keys(m.outcomes ?? {})).sort()).toEqual(
      [...(waiting[0]?.deliveryIds ?? [])].sort(),
    );

    // Copied and switched; then the carried answers are recorded in the new database, unsent again.
    traffic.clock += 1000;
    const copied = await traffic.move('copy', target.name);
    expect(copied.phase).toBe('copied');
    traffic.clock += 1000;
    expect(await traffic.move('switch', target.name)).toMatchObject({ phase: 'moved' });
    expect(await traffic.move('clean', target.name)).toMatchObject({ phase: 'moved', more: true });
    traffic.clock += 1000;
    await traffic.consume(carried);
    expect((await traffic.send(movers)).status).toBe(202);
    await traffic.consume(traffic.take());

    // Cleaned once every router has read the switch.
    traffic.clock += SWITCH_SETTLE_MS;
    expect(await traffic.move('clean', target.name)).toMatchObject({ phase: 'done', more: false });
    while (traffic.captured.queues.email.sent.length > 0) await traffic.consume(traffic.take());

    // The contact moved with its user, as it was before the lock.
    const moved = await traffic.at(() => api('GET', contactPath, undefined, { env: traffic.env }));
    expect(await json(moved)).toMatchObject(contact);
    // So did the user's key (the archive's copies of their data open with it).
    const keysIn = (db: D1Database) =>
      db
        .prepare('SELECT user_id, bucket, wrapped, created_at FROM user_keys WHERE user_id = ?')
        .bind(movers[0])
        .all();
    expect((await keysIn(target.db)).results).toEqual([expect.objectContaining(keyRow)]);
    expect((await keysIn(source.db)).results).toEqual([]);
    // And their topic subscription: one row, in the target.
    const subscriptionsIn = async (db: D1Database) =>
      (await db.prepare('SELECT user_id FROM topic_subscriptions WHERE topic_key = ?').bind(topic).all())
        .results;
    expect(await subscriptionsIn(target.db)).toEqual([{ user_id: movers[0] }]);
    expect(await subscriptionsIn(source.db)).toEqual([]);

    // Every delivery: one row, in its bucket's database, sent, and sent once.
    await router(traffic.env).refresh(traffic.clock + 60_000);
    const ids = traffic.deliveryIds();
    const rows = await rowsByDatabase(traffic.env, ids);
    for (const id of ids) {
      const bucket = router(traffic.env).forId(id);
      expect(rows.get(id), id).toEqual([bucket.name]);
      expect(sends.get(id), id).toBe(1);
    }
    expect(rows.size).toBe(ids.length);
    expect(ids.filter((id) => router(traffic.env).forId(id) === target).length).toBeGreaterThan(6);
    const statuses = await traffic.at(() =>
      Promise.all(
        traffic.accepted.map(async (a) =>
          json<{ deliveries: { status: string }[] }>(
            await api('GET', `/v1/notifications/${a.id}`, undefined, { env: traffic.env }),
          ),
        ),
      ),
    );
    expect(statuses.flatMap((n) => n.deliveries.map((d) => d.status))).toEqual(ids.map(() => 'sent'));
  });
});

describe('a move before its switch', () => {
  it('aborts: the copy is gone, the bucket stays where it was and takes writes again', async () => {
    const traffic = new Traffic(resendSendgridEnv(), ABORTED);
    countSends();
    const source = router(traffic.env).forBucket(ABORTED);
    const target = router(traffic.env).shards.find((s) => s !== source);
    if (!target) throw new Error('the tests run with two shards');
    const [user = ''] = usersIn(ABORTED, 1);
    expect((await traffic.send([user])).status).toBe(202);
    const counted = () =>
      traffic.at(async () => {
        const m = await json<Record<string, unknown>>(
          await api('GET', '/v1/metrics', undefined, { env: traffic.env }),
        );
        const backlog = m.backlog as { total: number; byChannel: unknown };
        return {
          accepted: m.acceptedInWindow,
          channels: m.channels,
          queued: [backlog.total, backlog.byChannel],
        };
      });
    const before = await counted();
    await traffic.move('lock', target.name);
    traffic.clock += ANNOUNCE_MS;
    await traffic.move('lock', target.name);
    expect(await traffic.move('copy', target.name)).toMatchObject({ phase: 'copied' });
    const ids = traffic.deliveryIds();
    expect([...(await rowsByDatabase(traffic.env, ids)).values()]).toEqual([[source.name, target.name]]);
    // Two copies, counted once; listed once.
    expect(await counted()).toEqual(before);
    const listed = await traffic.at(() =>
      api('GET', `/v1/notifications?userId=${user}`, undefined, { env: traffic.env }),
    );
    expect(
      (await json<{ data: { deliveries: unknown[] }[] }>(listed)).data.map((n) => n.deliveries.length),
    ).toEqual([1]);

    expect(await traffic.move('abort', target.name)).toMatchObject({
      phase: 'done',
      from: source.name,
      to: source.name,
    });
    expect([...(await rowsByDatabase(traffic.env, ids)).values()]).toEqual([[source.name]]);
    expect((await traffic.send([user])).status).toBe(202);
    await traffic.consume(traffic.take());
    const layout = await traffic.at(() => api('GET', '/v1/admin/shards', undefined, { env: traffic.env }));
    const body = await json<{ databases: { name: string; buckets: string }[] }>(layout);
    const holder = body.databases.find((d) => d.buckets.split(',').some((r) => inRange(r, ABORTED)));
    expect(holder?.name).toBe(source.name);
  });

  it('refuses a second move while one is underway, and a step out of order', async () => {
    const traffic = new Traffic(resendSendgridEnv(), REFUSED);
    const target = router(traffic.env).shards.find((s) => s !== router(traffic.env).forBucket(REFUSED));
    await traffic.move('lock', target?.name ?? '');
    const other = await traffic.at(() =>
      api(
        'POST',
        '/v1/admin/shards/move',
        { bucket: REFUSED + 1, to: 'DB_0', step: 'lock' },
        { env: traffic.env },
      ),
    );
    expect(other.status).toBe(409);
    expect(await json(other)).toMatchObject({ error: { code: 'move_underway' } });
    const early = await traffic.at(() =>
      api(
        'POST',
        '/v1/admin/shards/move',
        { bucket: REFUSED, to: target?.name, step: 'switch' },
        { env: traffic.env },
      ),
    );
    expect(early.status).toBe(409);
    expect(await json(early)).toMatchObject({ error: { code: 'wrong_step' } });
    expect(await traffic.move('abort', target?.name ?? '')).toMatchObject({ phase: 'done' });
  });
});

describe('the crons while a bucket is locked', () => {
  it('skip its rows and go on with every other bucket of the database', async () => {
    const at = Date.UTC(2031, 2, 3, 4, 5);
    const [locked, free] = [90, 91];
    const shard = router(testEnv).forBucket(locked);
    expect(router(testEnv).forBucket(free)).toBe(shard);
    const lockedIds = await insertDeliveries({ count: 3, atMs: at, bucket: locked });
    const freeIds = await insertDeliveries({ count: 3, atMs: at, bucket: free });
    const rows = new BucketRows(shard.db);
    await rows.lock(locked, 'incoming', at);
    try {
      const repo = createServices(parseEnv(testEnv)).deliveries.on(shard);
      const range = { after: idBoundAt('dlv', at - 1), before: idBoundAt('dlv', at + 1) };
      const claimed = await repo.claimStuck(range, at + 1, 100, at + 2);
      expect(claimed.map((c) => c.id).sort()).toEqual(freeIds);
      const oldest = await repo.oldestBefore(idBoundAt('dlv', at + 1), 100);
      expect(oldest.map((row) => row.id).filter((id) => lockedIds.includes(id as string))).toEqual([]);
    } finally {
      await rows.unlock(locked);
    }
  });
});

/** Whether `0-127` (or `5`) holds `bucket`. */
function inRange(range: string, bucket: number): boolean {
  const [first = '', last = first] = range.split('-');
  return bucket >= Number(first) && bucket <= Number(last);
}
