import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import type { DecisionRequest, DeliveryOutcome, Verdict } from '../../src/domain/recipient-rules';
import { Recipient } from '../../src/durable/recipient';
import { parseState } from '../../src/durable/recipient-state';

const { RECIPIENT } = env as unknown as Env;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const LEASE = 2 * MINUTE;
/** A fixed instant: the object only reads time from `nowMs`. */
const T0 = 1_700_000_000_000;
/** A type override of 1 send an hour. */
const CAP_OF_ONE = { rateLimit: { limit: 1, windowSeconds: 3600 } };

type Stub = DurableObjectStub<Recipient>;

function freshRecipient(): Stub {
  return RECIPIENT.get(RECIPIENT.idFromName(`user_${crypto.randomUUID()}`));
}

let counter = 0;
/** One delivery of its own notification, unless `over` names one. */
function request(over: Partial<DecisionRequest> = {}): DecisionRequest {
  counter += 1;
  return {
    deliveryId: `dlv_${counter}`,
    notificationId: `ntf_${counter}`,
    channel: 'sms',
    type: 'order.shipped',
    priority: 'normal',
    nowMs: T0,
    ...over,
  };
}

/** `n` deliveries of one notification (its devices, chat channels, addresses) on one channel. */
function siblings(n: number, over: Partial<DecisionRequest> = {}): DecisionRequest[] {
  counter += 1;
  const notificationId = `ntf_many_${counter}`;
  return Array.from({ length: n }, () => request({ notificationId, ...over }));
}

/** `n` SMS of distinct notifications `gapMs` apart from `startMs`. */
function smsBurst(
  n: number,
  startMs: number,
  over: Partial<DecisionRequest> = {},
  gapMs = MINUTE,
): DecisionRequest[] {
  return Array.from({ length: n }, (_, i) => request({ nowMs: startMs + i * gapMs, ...over }));
}

const done = (deliveryId: string, sent: boolean, nowMs = T0): DeliveryOutcome => ({
  deliveryId,
  sent,
  nowMs,
});

const verdictNames = (verdicts: Verdict[]) => verdicts.map((v) => v.verdict);

/** The verdicts of one `decide` call, in order. */
async function verdictsOf(stub: Stub, requests: DecisionRequest[]): Promise<string[]> {
  return verdictNames(await stub.decide(requests));
}

/** `n` sends, then the deferral of the first request over the cap. */
const sendsThenDefer = (n: number) => [...Array(n).fill('send'), 'defer'];

async function decideOne(stub: Stub, req: DecisionRequest) {
  const [verdict] = await stub.decide([req]);
  return verdict;
}

/** What the object's one storage row holds (sends, claims and leases counted), or null without a row. */
async function stored(stub: Stub): Promise<{ sends: number; claims: number; leases: number } | null> {
  return runInDurableObject(stub, (_instance, state) => {
    const [row] = state.storage.sql.exec<{ state: string }>('SELECT state FROM recipient_state').toArray();
    if (!row) return null;
    const held = parseState(row.state);
    return { sends: held.sends.size, claims: held.claims.size, leases: held.leases.size };
  });
}

async function pendingAlarm(stub: Stub): Promise<number | null> {
  return runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
}

/**
 * Runs `action` inside the object and sums the SQLite rows its statements wrote, as billed
 * (`SqlStorageCursor.rowsWritten`). A decision answered from memory runs no statement at all, so
 * the tests below that expect rows are what shows this handle reaches the object's statements.
 */
async function rowsWrittenBy(
  stub: Stub,
  action: (recipient: Recipient, state: DurableObjectState) => Promise<unknown>,
): Promise<number> {
  return runInDurableObject(stub, async (instance: Recipient, state) => {
    // Replaced by hand: vi.spyOn does not reach this native handle.
    const sql = state.storage.sql;
    const original = sql.exec;
    const exec = original.bind(sql);
    const cursors: { readonly rowsWritten: number }[] = [];
    sql.exec = <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]) => {
      const cursor = exec<T>(query, ...bindings);
      cursors.push(cursor);
      return cursor;
    };
    try {
      await action(instance, state);
    } finally {
      sql.exec = original;
    }
    return cursors.reduce((sum, cursor) => sum + cursor.rowsWritten, 0);
  });
}

/** Decides each request in its own call on a new instance: the object is evicted after every call. */
async function decideEvictingBetween(stub: Stub, requests: DecisionRequest[]): Promise<string[]> {
  const verdicts: string[] = [];
  for (const req of requests) {
    verdicts.push(...(await verdictsOf(stub, [req])));
    await evictDurableObject(stub);
  }
  return verdicts;
}

/**
 * Runs `action` on an instance of the object built with `vars` as its env (the namespace's own
 * instance reads the test env, where FAULT_EVICT_RATE is not set), over the same storage.
 */
async function withInstance<R>(
  stub: Stub,
  vars: Record<string, string>,
  action: (recipient: Recipient) => Promise<R>,
): Promise<R> {
  return runInDurableObject(stub, (_instance, state) => action(new Recipient(state, vars)));
}

const EVICT_EVERY_CALL = { ENVIRONMENT: 'test', FAULT_EVICT_RATE: '1' };

describe('lease', () => {
  it('answers leased while a delivery is out, and send again once it is completed', async () => {
    const stub = freshRecipient();
    const first = request({ channel: 'webhook' });
    expect(await decideOne(stub, first)).toEqual({ verdict: 'send', leaseUntilMs: T0 + LEASE });
    expect(await decideOne(stub, { ...first, nowMs: T0 + SECOND })).toEqual({ verdict: 'leased' });
    await stub.complete([done(first.deliveryId, true, T0 + 2 * SECOND)]);
    expect(await decideOne(stub, { ...first, nowMs: T0 + 3 * SECOND })).toEqual({
      verdict: 'send',
      leaseUntilMs: T0 + 3 * SECOND + LEASE,
    });
  });

  it('lets a lease lapse after two minutes (the holder is presumed dead)', async () => {
    const stub = freshRecipient();
    const first = request();
    await stub.decide([first]);
    expect(await decideOne(stub, { ...first, nowMs: T0 + LEASE - 1 })).toEqual({ verdict: 'leased' });
    expect(await decideOne(stub, { ...first, nowMs: T0 + LEASE })).toMatchObject({ verdict: 'send' });
  });

  it('leases the first of two copies of a delivery in one batch', async () => {
    const stub = freshRecipient();
    const copy = request();
    expect(await stub.decide([copy, copy])).toEqual([
      { verdict: 'send', leaseUntilMs: T0 + LEASE },
      { verdict: 'leased' },
    ]);
  });

  it('still answers leased after an eviction for a lease granted before it', async () => {
    const stub = freshRecipient();
    const first = request({ channel: 'email' });
    await stub.decide([first]);
    await evictDurableObject(stub);
    expect(await decideOne(stub, { ...first, nowMs: T0 + MINUTE })).toEqual({ verdict: 'leased' });
    expect(await decideOne(stub, { ...first, nowMs: T0 + LEASE })).toMatchObject({ verdict: 'send' });
  });

  it('keeps the lease of a delivery with only a dedupe key (an uncapped webhook) across eviction', async () => {
    const stub = freshRecipient();
    const hook = request({ channel: 'webhook', dedupeKey: 'evt-1' });
    await stub.decide([hook]);
    await evictDurableObject(stub);
    expect(await decideOne(stub, { ...hook, nowMs: T0 + MINUTE })).toEqual({ verdict: 'leased' });
  });
});

describe('dedupe', () => {
  const key = { dedupeKey: 'order-42' };

  it('answers duplicate for the same key, type and channel from another notification, naming the first delivery', async () => {
    const stub = freshRecipient();
    const first = request(key);
    const verdicts = await stub.decide([first, request({ ...key, nowMs: T0 + SECOND })]);
    expect(verdicts).toEqual([
      { verdict: 'send', leaseUntilMs: T0 + LEASE },
      { verdict: 'duplicate', firstDeliveryId: first.deliveryId },
    ]);
    expect(await decideOne(stub, request({ ...key, nowMs: T0 + HOUR }))).toEqual({
      verdict: 'duplicate',
      firstDeliveryId: first.deliveryId,
    });
  });

  it('sends both deliveries (two device tokens) of the notification that made the claim', async () => {
    const stub = freshRecipient();
    const [phone, tablet] = siblings(2, { ...key, channel: 'push' });
    expect(await verdictsOf(stub, [phone as DecisionRequest, tablet as DecisionRequest])).toEqual([
      'send',
      'send',
    ]);
    // A third device of the same notification, in a later call, passes too; a twin does not.
    const [laptop] = siblings(1, { ...key, channel: 'push', notificationId: phone?.notificationId });
    expect(
      await stub.decide([
        { ...(laptop as DecisionRequest), nowMs: T0 + MINUTE },
        request({ ...key, channel: 'push' }),
      ]),
    ).toEqual([
      { verdict: 'send', leaseUntilMs: T0 + MINUTE + LEASE },
      { verdict: 'duplicate', firstDeliveryId: phone?.deliveryId },
    ]);
  });

  it('keeps a dedupe claim across eviction, with the claiming notification still let through', async () => {
    const stub = freshRecipient();
    const [slack, teams] = siblings(2, { ...key, channel: 'chat' });
    await stub.decide([slack as DecisionRequest]);
    await evictDurableObject(stub);
    expect(
      await stub.decide([
        { ...(teams as DecisionRequest), nowMs: T0 + MINUTE },
        request({ ...key, channel: 'chat', nowMs: T0 + MINUTE }),
      ]),
    ).toEqual([
      { verdict: 'send', leaseUntilMs: T0 + MINUTE + LEASE },
      { verdict: 'duplicate', firstDeliveryId: slack?.deliveryId },
    ]);
  });

  it('keeps channels and types apart', async () => {
    const stub = freshRecipient();
    const verdicts = await stub.decide([
      request(key),
      request({ ...key, channel: 'email' }),
      request({ ...key, type: 'order.delivered' }),
    ]);
    expect(verdictNames(verdicts)).toEqual(['send', 'send', 'send']);
  });

  it('lets the key through again once the window has passed (24 h by default)', async () => {
    const stub = freshRecipient();
    await stub.decide([request({ ...key, priority: 'critical' })]);
    const late = { ...key, priority: 'critical' } as const;
    expect(await decideOne(stub, request({ ...late, nowMs: T0 + DAY - 1 }))).toMatchObject({
      verdict: 'duplicate',
    });
    expect(await decideOne(stub, request({ ...late, nowMs: T0 + DAY }))).toMatchObject({ verdict: 'send' });
  });

  it('honours a shorter window', async () => {
    const stub = freshRecipient();
    const short = { ...key, dedupeWindowSeconds: 90 };
    await stub.decide([request(short)]);
    expect(await decideOne(stub, request({ ...short, nowMs: T0 + 90 * SECOND - 1 }))).toMatchObject({
      verdict: 'duplicate',
    });
    expect(await decideOne(stub, request({ ...short, nowMs: T0 + 90 * SECOND }))).toMatchObject({
      verdict: 'send',
    });
  });

  it('is no duplicate of itself: a redelivery of the claimant proceeds', async () => {
    const stub = freshRecipient();
    const first = request(key);
    await stub.decide([first]);
    await stub.complete([done(first.deliveryId, true)]);
    expect(await decideOne(stub, { ...first, nowMs: T0 + MINUTE })).toMatchObject({ verdict: 'send' });
  });

  it('frees the claim when the claimant was not sent, and only then', async () => {
    const stub = freshRecipient();
    const first = request(key);
    const twin = request({ ...key, nowMs: T0 + SECOND });
    await stub.decide([first, twin]);
    // The twin never held the claim: its failure must not free the first delivery's.
    await stub.complete([done(twin.deliveryId, false)]);
    expect(await decideOne(stub, request({ ...key, nowMs: T0 + 2 * SECOND }))).toMatchObject({
      verdict: 'duplicate',
      firstDeliveryId: first.deliveryId,
    });
    await stub.complete([done(first.deliveryId, false)]);
    const retry = request({ ...key, nowMs: T0 + 3 * SECOND });
    expect(await decideOne(stub, retry)).toMatchObject({ verdict: 'send' });
    expect(await decideOne(stub, request({ ...key, nowMs: T0 + 4 * SECOND }))).toEqual({
      verdict: 'duplicate',
      firstDeliveryId: retry.deliveryId,
    });
  });

  it('keeps the claim while another delivery of its notification went, naming that one', async () => {
    const stub = freshRecipient();
    const [first, second] = siblings(2, { ...key, channel: 'push' });
    await stub.decide([first as DecisionRequest, second as DecisionRequest]);
    await stub.complete([done(first?.deliveryId ?? '', false)]);
    expect(await decideOne(stub, request({ ...key, channel: 'push', nowMs: T0 + SECOND }))).toEqual({
      verdict: 'duplicate',
      firstDeliveryId: second?.deliveryId,
    });
  });
});

describe('rate limit', () => {
  it('sends up to the channel cap, then defers normal and high to the exact instant a slot frees', async () => {
    const stub = freshRecipient();
    expect(await verdictsOf(stub, smsBurst(5, T0))).toEqual(Array(5).fill('send'));
    const at = T0 + 10 * MINUTE;
    expect(await stub.decide([request({ nowMs: at }), request({ nowMs: at, priority: 'high' })])).toEqual([
      { verdict: 'defer', untilMs: T0 + HOUR },
      { verdict: 'defer', untilMs: T0 + HOUR },
    ]);
    expect(await decideOne(stub, request({ nowMs: T0 + HOUR }))).toMatchObject({ verdict: 'send' });
    // That send took the freed slot; the next one waits for the second oldest.
    expect(await decideOne(stub, request({ nowMs: T0 + HOUR }))).toEqual({
      verdict: 'defer',
      untilMs: T0 + MINUTE + HOUR,
    });
  });

  it('drops low priority over the cap and lets critical through (counted)', async () => {
    const stub = freshRecipient();
    await stub.decide(smsBurst(5, T0));
    const at = T0 + 10 * MINUTE;
    expect(await decideOne(stub, request({ nowMs: at, priority: 'low' }))).toEqual({ verdict: 'drop' });
    expect(await decideOne(stub, request({ nowMs: at, priority: 'critical' }))).toMatchObject({
      verdict: 'send',
    });
    // Six sends in the window now, so one free slot needs the two oldest gone.
    expect(await decideOne(stub, request({ nowMs: T0 + HOUR }))).toEqual({
      verdict: 'defer',
      untilMs: T0 + MINUTE + HOUR,
    });
    expect(await stored(stub)).toMatchObject({ claims: 0, sends: 6 });
  });

  it('counts per channel', async () => {
    const stub = freshRecipient();
    await stub.decide(smsBurst(5, T0));
    expect(await decideOne(stub, request({ channel: 'push', nowMs: T0 + 10 * MINUTE }))).toMatchObject({
      verdict: 'send',
    });
  });

  it('applies a type override per (channel, type), leaving other types on the channel default', async () => {
    const stub = freshRecipient();
    const otp = { type: 'auth.otp', rateLimit: { limit: 2, windowSeconds: 600 } };
    const verdicts = await stub.decide([
      request({ ...otp, nowMs: T0 }),
      request({ ...otp, nowMs: T0 + MINUTE }),
      request({ ...otp, nowMs: T0 + 2 * MINUTE }),
      request({ nowMs: T0 + 2 * MINUTE }),
    ]);
    expect(verdicts).toEqual([
      { verdict: 'send', leaseUntilMs: T0 + LEASE },
      { verdict: 'send', leaseUntilMs: T0 + MINUTE + LEASE },
      { verdict: 'defer', untilMs: T0 + 600 * SECOND },
      { verdict: 'send', leaseUntilMs: T0 + 2 * MINUTE + LEASE },
    ]);
    expect(await decideOne(stub, request({ ...otp, nowMs: T0 + 600 * SECOND }))).toMatchObject({
      verdict: 'send',
    });
  });

  it('takes one slot of the push cap for three push deliveries of one notification', async () => {
    const stub = freshRecipient();
    expect(await verdictsOf(stub, siblings(3, { channel: 'push' }))).toEqual(['send', 'send', 'send']);
    // 10 an hour: the three devices were one notification, so nine more fit, and the tenth waits.
    expect(await verdictsOf(stub, smsBurst(10, T0 + MINUTE, { channel: 'push' }, SECOND))).toEqual(
      sendsThenDefer(9),
    );
  });

  it('lets a notification’s later deliveries through on its slot even when the cap filled since', async () => {
    const stub = freshRecipient();
    const [phone, tablet] = siblings(2, { channel: 'push' });
    await stub.decide([phone as DecisionRequest]);
    expect(await verdictsOf(stub, smsBurst(10, T0 + SECOND, { channel: 'push' }, SECOND))).toEqual(
      sendsThenDefer(9),
    );
    await evictDurableObject(stub);
    expect(await decideOne(stub, { ...(tablet as DecisionRequest), nowMs: T0 + MINUTE })).toMatchObject({
      verdict: 'send',
    });
  });

  it('gives the slot back when a send was not sent', async () => {
    const stub = freshRecipient();
    const burst = smsBurst(5, T0);
    await stub.decide(burst);
    const sixth = request({ nowMs: T0 + 10 * MINUTE });
    expect(await decideOne(stub, sixth)).toMatchObject({ verdict: 'defer' });
    const failed = done(burst[2]?.deliveryId ?? '', false, T0 + 10 * MINUTE);
    expect(await rowsWrittenBy(stub, (recipient) => recipient.complete([failed]))).toBe(1);
    expect(await stored(stub)).toMatchObject({ sends: 4 });
    await evictDurableObject(stub);
    expect(await decideOne(stub, sixth)).toMatchObject({ verdict: 'send' });
    expect(await stored(stub)).toMatchObject({ sends: 5 });
  });

  it('keeps the notification’s slot while one of its deliveries went; the last one not sent gives it back', async () => {
    const stub = freshRecipient();
    const [first, second] = siblings(2, { channel: 'push', rateLimit: { limit: 1, windowSeconds: 3600 } });
    await stub.decide([first as DecisionRequest, second as DecisionRequest]);
    const other = request({ channel: 'push', ...CAP_OF_ONE, nowMs: T0 + SECOND });
    await stub.complete([done(first?.deliveryId ?? '', false)]);
    expect(await decideOne(stub, other)).toMatchObject({ verdict: 'defer' });
    await stub.complete([done(second?.deliveryId ?? '', false)]);
    expect(await decideOne(stub, other)).toMatchObject({ verdict: 'send' });
  });

  it('does not defer a redelivery by its own slot', async () => {
    const stub = freshRecipient();
    const burst = smsBurst(5, T0);
    await stub.decide(burst);
    const crashed = burst[4] as DecisionRequest;
    // Its consumer died without completing; the lease lapses and the queue redelivers it.
    expect(await decideOne(stub, { ...crashed, nowMs: crashed.nowMs + LEASE })).toMatchObject({
      verdict: 'send',
    });
    expect(await stored(stub)).toMatchObject({ claims: 0, sends: 5 });
  });

  it('never caps a webhook by default', async () => {
    const stub = freshRecipient();
    const verdicts = await stub.decide(smsBurst(50, T0, { channel: 'webhook' }));
    expect(verdictNames(verdicts)).toEqual(Array(50).fill('send'));
  });

  it('rejects a malformed cap without writing anything', async () => {
    const stub = freshRecipient();
    // Called on the instance: a throw across RPC is also reported by the pool as unhandled.
    await runInDurableObject(stub, async (recipient: Recipient) => {
      await expect(
        recipient.decide([
          request({ dedupeKey: 'k' }),
          request({ rateLimit: { limit: 0, windowSeconds: 60 } }),
        ]),
      ).rejects.toThrow(RangeError);
    });
    expect(await stored(stub)).toBeNull();
    expect(await pendingAlarm(stub)).toBeNull();
    // Nor counted in memory: the rejected batch's first SMS takes no slot.
    expect(await verdictsOf(stub, smsBurst(6, T0))).toEqual(sendsThenDefer(5));
  });
});

describe('eviction', () => {
  /** One SMS every 3 minutes for an hour: 20 notifications, each decided on a fresh instance. */
  const trickle = (priority: DecisionRequest['priority']) => smsBurst(20, T0, { priority }, 3 * MINUTE);

  it.each([
    ['deferred (normal)', 'normal', 'defer'],
    ['dropped as rate_limited (low)', 'low', 'drop'],
  ] as const)(
    'caps a slow trickle evicted between sends at 5 an hour: the 6th is %s',
    async (_name, priority, over) => {
      const stub = freshRecipient();
      expect(await decideEvictingBetween(stub, trickle(priority))).toEqual([
        ...Array(5).fill('send'),
        ...Array(15).fill(over),
      ]);
    },
  );

  it('caps a slow trickle under FAULT_EVICT_RATE=1, every call reading the row from storage', async () => {
    const stub = freshRecipient();
    let reads = 0;
    const verdicts = await runInDurableObject(stub, async (_instance, state) => {
      const sql = state.storage.sql;
      const original = sql.exec;
      const exec = original.bind(sql);
      sql.exec = <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]) => {
        if (query.startsWith('SELECT state FROM recipient_state')) reads += 1;
        return exec<T>(query, ...bindings);
      };
      try {
        const recipient = new Recipient(state, EVICT_EVERY_CALL);
        const out: string[] = [];
        for (const req of trickle('normal')) out.push(...verdictNames(await recipient.decide([req])));
        return out;
      } finally {
        sql.exec = original;
      }
    });
    expect(verdicts).toEqual([...Array(5).fill('send'), ...Array(15).fill('defer')]);
    expect(reads).toBe(20);
  });

  it('FAULT_EVICT_RATE drops memory only in development and test: a memory-only lease shows it', async () => {
    const hook = request({ channel: 'webhook' });
    const twice = (vars: Record<string, string>) =>
      withInstance(freshRecipient(), vars, async (recipient) => {
        await recipient.decide([hook]);
        return verdictNames(await recipient.decide([{ ...hook, nowMs: T0 + SECOND }]));
      });
    expect(await twice(EVICT_EVERY_CALL)).toEqual(['send']);
    expect(await twice({ ...EVICT_EVERY_CALL, ENVIRONMENT: 'development' })).toEqual(['send']);
    expect(await twice({ ...EVICT_EVERY_CALL, ENVIRONMENT: 'production' })).toEqual(['leased']);
    expect(await twice({ ENVIRONMENT: 'test', FAULT_EVICT_RATE: '0' })).toEqual(['leased']);
  });

  it('keeps dedupe claims, the sends of a burst and leases across eviction', async () => {
    const stub = freshRecipient();
    const burst = smsBurst(5, T0);
    const claimant = request({ channel: 'email', dedupeKey: 'invoice-7' });
    await stub.decide([...burst, claimant]);
    expect(await stored(stub)).toEqual({ claims: 1, sends: 6, leases: 6 });

    await evictDurableObject(stub);

    const at = T0 + 5 * MINUTE;
    expect(
      await stub.decide([
        request({ nowMs: at }),
        request({ nowMs: at, channel: 'email', dedupeKey: 'invoice-7' }),
        { ...(burst[4] as DecisionRequest), nowMs: at },
      ]),
    ).toEqual([
      { verdict: 'defer', untilMs: T0 + HOUR },
      { verdict: 'duplicate', firstDeliveryId: claimant.deliveryId },
      { verdict: 'leased' },
    ]);
  });

  it('counts every send across eviction, however few', async () => {
    const stub = freshRecipient();
    await stub.decide(smsBurst(2, T0));
    await evictDurableObject(stub);
    expect(await verdictsOf(stub, smsBurst(4, T0 + 10 * MINUTE))).toEqual(sendsThenDefer(3));
  });

  it('keeps a cap of 1 exact across eviction', async () => {
    const stub = freshRecipient();
    await stub.decide([request({ ...CAP_OF_ONE, channel: 'email' })]);
    await evictDurableObject(stub);
    expect(await decideOne(stub, request({ ...CAP_OF_ONE, channel: 'email', nowMs: T0 + MINUTE }))).toEqual({
      verdict: 'defer',
      untilMs: T0 + HOUR,
    });
  });

  it('folds in the rows of the earlier layout (a row per send and claim) and drops its tables', async () => {
    const stub = freshRecipient();
    await runInDurableObject(stub, (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE sends (delivery_id TEXT PRIMARY KEY, channel TEXT NOT NULL, type TEXT NOT NULL,
        sent_at INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID`);
      sql.exec(`CREATE TABLE dedupe_claims (channel TEXT NOT NULL, type TEXT NOT NULL, dedupe_key TEXT NOT NULL,
        delivery_id TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (channel, type, dedupe_key)) WITHOUT ROWID`);
      sql.exec("INSERT INTO sends VALUES ('dlv_old', 'email', 'order.shipped', ?, ?)", T0, T0 + HOUR);
      sql.exec("INSERT INTO sends VALUES ('dlv_gone', 'email', 'order.shipped', ?, ?)", T0 - DAY, T0 - 1);
      sql.exec("INSERT INTO dedupe_claims VALUES ('email', 'order.shipped', 'k', 'dlv_old', ?)", T0 + DAY);
    });
    await evictDurableObject(stub);
    const at = T0 + MINUTE;
    expect(
      await verdictsOf(stub, [
        request({ ...CAP_OF_ONE, channel: 'email', nowMs: at }),
        request({ channel: 'email', dedupeKey: 'k', nowMs: at }),
        request({ deliveryId: 'dlv_old', channel: 'email', ...CAP_OF_ONE, dedupeKey: 'k', nowMs: at }),
      ]),
    ).toEqual(['defer', 'duplicate', 'send']);
    const tables = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .toArray()
        .map((t) => t.name),
    );
    expect(tables).not.toContain('sends');
    expect(tables).not.toContain('dedupe_claims');
    expect(await stored(stub)).toEqual({ claims: 1, sends: 1, leases: 1 });
  });

  it('lets an alarm left by the earlier layout fire once and sets none', async () => {
    const stub = freshRecipient();
    await runInDurableObject(stub, (_instance, state) => state.storage.setAlarm(Date.now() + HOUR));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await pendingAlarm(stub)).toBeNull();
  });
});

describe('rows written', () => {
  it.each([
    ['an SMS with a dedupe key: the state row', request({ dedupeKey: 'k' }), 1],
    ['an SMS without a key: the state row (its send counts)', request(), 1],
    ['an email without a key', request({ channel: 'email' }), 1],
    ['a type capped at 1', request(CAP_OF_ONE), 1],
    ['an SMS of a type with no cap: still counted by the channel default', request({ rateLimit: null }), 1],
    ['a webhook with a dedupe key', request({ channel: 'webhook', dedupeKey: 'k' }), 1],
    ['a webhook under a type cap', request({ channel: 'webhook', ...CAP_OF_ONE }), 1],
    [
      'a webhook without key or cap: nothing (its lease is kept in memory)',
      request({ channel: 'webhook' }),
      0,
    ],
  ])('%s', async (_name, req, expected) => {
    const stub = freshRecipient();
    expect(await rowsWrittenBy(stub, (recipient) => recipient.decide([req]))).toBe(expected);
  });

  it('writes at most one row per decide call, whatever the batch holds', async () => {
    const stub = freshRecipient();
    const batch = [
      ...siblings(3, { channel: 'push' }),
      ...siblings(2, { channel: 'chat', dedupeKey: 'deploy-9' }),
      request({ channel: 'email', dedupeKey: 'invoice-1' }),
      ...smsBurst(6, T0, {}, SECOND),
      request({ channel: 'webhook' }),
      request({ channel: 'webhook', dedupeKey: 'evt-1' }),
    ];
    let verdicts: string[] = [];
    const written = await rowsWrittenBy(stub, async (recipient) => {
      verdicts = verdictNames(await recipient.decide(batch));
    });
    expect(verdicts).toEqual([...Array(6).fill('send'), ...sendsThenDefer(5), 'send', 'send']);
    expect(written).toBe(1);
    await evictDurableObject(stub);
    // After a start: read once, written once.
    const next = [
      request({ channel: 'email', nowMs: T0 + MINUTE }),
      request({ channel: 'chat', nowMs: T0 + MINUTE }),
    ];
    expect(await rowsWrittenBy(stub, (recipient) => recipient.decide(next))).toBe(1);
  });

  it('writes one row per call that lets a send through, none for the deferred one, and no alarm', async () => {
    const stub = freshRecipient();
    const written: number[] = [];
    for (const req of smsBurst(6, T0)) {
      written.push(await rowsWrittenBy(stub, (recipient) => recipient.decide([req])));
    }
    expect(written).toEqual([1, 1, 1, 1, 1, 0]);
    expect(await stored(stub)).toMatchObject({ claims: 0, sends: 5 });
    expect(await pendingAlarm(stub)).toBeNull();
  });

  it('rewrites the row for a redelivery, restamping its send', async () => {
    const stub = freshRecipient();
    const first = request(CAP_OF_ONE);
    await stub.decide([first]);
    const redelivered = { ...first, nowMs: T0 + LEASE };
    expect(await rowsWrittenBy(stub, (recipient) => recipient.decide([redelivered]))).toBe(1);
    const sentAt = await runInDurableObject(stub, (_instance, state) => {
      const [row] = state.storage.sql.exec<{ state: string }>('SELECT state FROM recipient_state').toArray();
      return [...parseState(row?.state ?? '').sends.values()].map((send) => send.sentAtMs);
    });
    expect(sentAt).toEqual([T0 + LEASE]);
  });

  it('writes nothing for leased, duplicate, deferred and dropped deliveries, nor for a sent completion', async () => {
    const stub = freshRecipient();
    const burst = smsBurst(5, T0);
    const claimant = request({ channel: 'email', dedupeKey: 'k' });
    await stub.decide([...burst, claimant]);
    const at = T0 + 10 * MINUTE;
    const written = await rowsWrittenBy(stub, async (recipient) => {
      const verdicts = await recipient.decide([
        { ...(burst[0] as DecisionRequest), nowMs: at - 9 * MINUTE },
        request({ channel: 'email', dedupeKey: 'k', nowMs: at }),
        request({ nowMs: at }),
        request({ nowMs: at, priority: 'low' }),
      ]);
      expect(verdictNames(verdicts)).toEqual(['leased', 'duplicate', 'defer', 'drop']);
      await recipient.complete(burst.map((r) => done(r.deliveryId, true, at)));
    });
    expect(written).toBe(0);
  });

  it('writes one row to give back the send and the claim of a delivery that was not sent', async () => {
    const stub = freshRecipient();
    const req = request({ ...CAP_OF_ONE, dedupeKey: 'k' });
    await stub.decide([req, request({ ...CAP_OF_ONE, type: 'other', dedupeKey: 'other' })]);
    expect(await stored(stub)).toEqual({ claims: 2, sends: 2, leases: 2 });
    expect(await rowsWrittenBy(stub, (recipient) => recipient.complete([done(req.deliveryId, false)]))).toBe(
      1,
    );
    expect(await stored(stub)).toEqual({ claims: 1, sends: 1, leases: 1 });
  });

  it('prunes what expired when it rewrites the row, so no cleanup alarm is needed', async () => {
    const stub = freshRecipient();
    await stub.decide([request({ ...CAP_OF_ONE, dedupeKey: 'old', channel: 'email' })]);
    expect(await stored(stub)).toEqual({ claims: 1, sends: 1, leases: 1 });
    expect(await pendingAlarm(stub)).toBeNull();
    await stub.decide([request({ nowMs: T0 + 2 * DAY })]);
    expect(await stored(stub)).toEqual({ claims: 0, sends: 1, leases: 1 });
  });

  it('deletes the row when giving back leaves nothing', async () => {
    const stub = freshRecipient();
    const req = request({ dedupeKey: 'k' });
    await stub.decide([req]);
    await stub.complete([done(req.deliveryId, false)]);
    expect(await stored(stub)).toBeNull();
  });
});
