import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import type { DecisionRequest, DeliveryOutcome } from '../../src/domain/recipient-rules';
import type { Recipient } from '../../src/durable/recipient';

const { RECIPIENT } = env as unknown as Env;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const LEASE = 2 * MINUTE;
/** A fixed instant for rules that only read `nowMs`; the alarm tests use the real clock. */
const T0 = 1_700_000_000_000;
/** A type override of 1 send an hour: half the cap from the first send, so that send is written. */
const CAP_OF_ONE = { rateLimit: { limit: 1, windowSeconds: 3600 } };

type Stub = DurableObjectStub<Recipient>;

function freshRecipient(): Stub {
  return RECIPIENT.get(RECIPIENT.idFromName(`user_${crypto.randomUUID()}`));
}

let counter = 0;
function request(over: Partial<DecisionRequest> = {}): DecisionRequest {
  counter += 1;
  return {
    deliveryId: `dlv_${counter}`,
    channel: 'sms',
    type: 'order.shipped',
    priority: 'normal',
    nowMs: T0,
    ...over,
  };
}

/** `n` SMS a minute apart from `startMs`, each a distinct delivery. */
function smsBurst(n: number, startMs: number, over: Partial<DecisionRequest> = {}): DecisionRequest[] {
  return Array.from({ length: n }, (_, i) => request({ nowMs: startMs + i * MINUTE, ...over }));
}

const done = (deliveryId: string, sent: boolean, nowMs = T0): DeliveryOutcome => ({
  deliveryId,
  sent,
  nowMs,
});

/** The verdicts of one `decide` call, in order. */
async function verdictsOf(stub: Stub, requests: DecisionRequest[]): Promise<string[]> {
  return (await stub.decide(requests)).map((v) => v.verdict);
}

/** `n` sends, then the deferral of the first request over the cap. */
const sendsThenDefer = (n: number) => [...Array(n).fill('send'), 'defer'];

async function decideOne(stub: Stub, req: DecisionRequest) {
  const [verdict] = await stub.decide([req]);
  return verdict;
}

async function rowCounts(stub: Stub): Promise<{ claims: number; sends: number }> {
  return runInDurableObject(stub, (_instance, state) => {
    const count = (table: string) =>
      state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${table}`).one().n;
    return { claims: count('dedupe_claims'), sends: count('sends') };
  });
}

async function pendingAlarm(stub: Stub): Promise<number | null> {
  return runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
}

/** The cleanup alarm set when rows were first written: an hour after a moment from `fromMs` to now. */
async function expectCleanupAlarm(stub: Stub, fromMs: number): Promise<number> {
  const at = await pendingAlarm(stub);
  expect(at).toBeGreaterThanOrEqual(fromMs + HOUR);
  expect(at).toBeLessThanOrEqual(Date.now() + HOUR);
  return at ?? 0;
}

/**
 * Runs `action` inside the object and sums the SQLite rows its statements wrote, as billed
 * (`SqlStorageCursor.rowsWritten`). A decision answered from memory runs no statement at all, so
 * the tests below that expect rows are what shows this handle reaches the object's statements.
 */
async function rowsWrittenBy(
  stub: Stub,
  action: (recipient: Recipient) => Promise<unknown>,
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
      await action(instance);
    } finally {
      sql.exec = original;
    }
    return cursors.reduce((sum, cursor) => sum + cursor.rowsWritten, 0);
  });
}

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
});

describe('dedupe', () => {
  const key = { dedupeKey: 'order-42' };

  it('answers duplicate for the same key, type and channel, naming the first delivery', async () => {
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

  it('keeps channels and types apart', async () => {
    const stub = freshRecipient();
    const verdicts = await stub.decide([
      request(key),
      request({ ...key, channel: 'email' }),
      request({ ...key, type: 'order.delivered' }),
    ]);
    expect(verdicts.map((v) => v.verdict)).toEqual(['send', 'send', 'send']);
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
});

describe('rate limit', () => {
  it('sends up to the channel cap, then defers normal and high to the exact instant a slot frees', async () => {
    const stub = freshRecipient();
    const burst = smsBurst(5, T0);
    expect(await verdictsOf(stub, burst)).toEqual(Array(5).fill('send'));
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
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 6 });
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

  it('gives the slot back when a written send was not sent, deleting its row', async () => {
    const stub = freshRecipient();
    const burst = smsBurst(5, T0);
    await stub.decide(burst);
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 5 });
    const sixth = request({ nowMs: T0 + 10 * MINUTE });
    expect(await decideOne(stub, sixth)).toMatchObject({ verdict: 'defer' });
    const failed = done(burst[2]?.deliveryId ?? '', false, T0 + 10 * MINUTE);
    expect(await rowsWrittenBy(stub, (recipient) => recipient.complete([failed]))).toBe(1);
    expect(await decideOne(stub, sixth)).toMatchObject({ verdict: 'send' });
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 5 });
  });

  it('gives the slot back when a send held only in memory was not sent', async () => {
    const stub = freshRecipient();
    const [first, second] = smsBurst(2, T0);
    await stub.decide([first as DecisionRequest, second as DecisionRequest]);
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 0 });
    expect(
      await rowsWrittenBy(stub, (recipient) => recipient.complete([done(first?.deliveryId ?? '', false)])),
    ).toBe(0);
    // Two sends would count with the first one still there (2 * 3 >= 5): one does, so no row yet.
    const rest = smsBurst(5, T0 + 5 * MINUTE);
    expect(await rowsWrittenBy(stub, (recipient) => recipient.decide(rest.slice(0, 1)))).toBe(0);
    expect(await verdictsOf(stub, rest.slice(1))).toEqual(sendsThenDefer(3));
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
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 5 });
  });

  it('never caps a webhook by default', async () => {
    const stub = freshRecipient();
    const verdicts = await stub.decide(smsBurst(50, T0, { channel: 'webhook' }));
    expect(verdicts.map((v) => v.verdict)).toEqual(Array(50).fill('send'));
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
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 0 });
    expect(await pendingAlarm(stub)).toBeNull();
    // Nor counted in memory: the rejected batch's first SMS takes no slot.
    expect(await verdictsOf(stub, smsBurst(6, T0))).toEqual(sendsThenDefer(5));
  });
});

describe('rows written', () => {
  it.each([
    [
      'an SMS with a dedupe key: only its claim (the send is counted in memory)',
      request({ dedupeKey: 'k' }),
      1,
    ],
    ['an SMS without a key: nothing (counted in memory)', request(), 0],
    ['an email without a key: nothing (counted in memory)', request({ channel: 'email' }), 0],
    ['a type capped at 1: its send, which fills the cap', request(CAP_OF_ONE), 1],
    [
      'a type capped at 2: its send, which fills half the cap',
      request({ rateLimit: { limit: 2, windowSeconds: 60 } }),
      1,
    ],
    ['a webhook without a key: nothing to count', request({ channel: 'webhook' }), 0],
  ])('%s', async (_name, req, expected) => {
    const stub = freshRecipient();
    expect(await rowsWrittenBy(stub, (recipient) => recipient.decide([req]))).toBe(expected);
  });

  it.each([
    ['an email', 'email'],
    ['an SMS', 'sms'],
    ['a push', 'push'],
    ['a chat message', 'chat'],
  ] as const)('a lone capped send (%s) writes no row and sets no alarm', async (_name, channel) => {
    const stub = freshRecipient();
    const req = request({ channel, nowMs: Date.now() });
    expect(await rowsWrittenBy(stub, (recipient) => recipient.decide([req]))).toBe(0);
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 0 });
    expect(await pendingAlarm(stub)).toBeNull();
  });

  it('writes SMS sends from half the cap on: none for the 1st and 2nd, 3 rows for the 3rd, then 1 each', async () => {
    const stub = freshRecipient();
    const startMs = Date.now();
    const sends = smsBurst(6, startMs);
    const written: number[] = [];
    const verdicts: string[] = [];
    for (const req of sends) {
      written.push(
        await rowsWrittenBy(stub, async (recipient) => {
          const [verdict] = await recipient.decide([req]);
          verdicts.push(verdict?.verdict ?? '');
        }),
      );
      if (written.length === 2) expect(await pendingAlarm(stub)).toBeNull();
    }
    // 2 * 3 >= 5: the 3rd send writes itself and the two held in memory; the 6th is over the cap.
    expect(written).toEqual([0, 0, 3, 1, 1, 0]);
    expect(verdicts).toEqual(sendsThenDefer(5));
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 5 });
    await expectCleanupAlarm(stub, startMs);
  });

  it('checks half of a type override and of the channel default, each over its own sends', async () => {
    const stub = freshRecipient();
    const otp = { type: 'auth.otp', rateLimit: { limit: 4, windowSeconds: 600 } };
    // 1 of 4 for auth.otp, 1 of 5 for SMS: memory only.
    expect(await rowsWrittenBy(stub, (r) => r.decide([request({ ...otp, nowMs: T0 })]))).toBe(0);
    // 2 of 4 for auth.otp: written with the first.
    expect(await rowsWrittenBy(stub, (r) => r.decide([request({ ...otp, nowMs: T0 + MINUTE })]))).toBe(2);
    // Another type: 3 of 5 for SMS, which counts every type, so it is written too.
    expect(await rowsWrittenBy(stub, (r) => r.decide([request({ nowMs: T0 + 2 * MINUTE })]))).toBe(1);
  });

  it.each([
    ['rewrites the row of a written send that is redelivered', CAP_OF_ONE, 1, 1],
    ['writes no row for a redelivered send held in memory', { channel: 'email' } as const, 0, 0],
  ])('%s', async (_name, over, expected, rows) => {
    const stub = freshRecipient();
    const first = request(over);
    await stub.decide([first]);
    const redelivered = { ...first, nowMs: T0 + LEASE };
    expect(await rowsWrittenBy(stub, (recipient) => recipient.decide([redelivered]))).toBe(expected);
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: rows });
    await runInDurableObject(stub, (_instance, state) => {
      const sentAt = state.storage.sql.exec<{ sent_at: number }>('SELECT sent_at FROM sends').toArray();
      expect(sentAt).toEqual(rows === 0 ? [] : [{ sent_at: T0 + LEASE }]);
    });
  });

  it('writes nothing for leased, duplicate, deferred and dropped deliveries, nor for a sent completion', async () => {
    const stub = freshRecipient();
    const burst = smsBurst(5, T0, { dedupeKey: undefined });
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
      expect(verdicts.map((v) => v.verdict)).toEqual(['leased', 'duplicate', 'defer', 'drop']);
      await recipient.complete(burst.map((r) => done(r.deliveryId, true, at)));
    });
    expect(written).toBe(0);
  });

  it('deletes exactly the send and the claim of a delivery that was not sent', async () => {
    const stub = freshRecipient();
    const req = request({ ...CAP_OF_ONE, dedupeKey: 'k' });
    await stub.decide([req, request({ ...CAP_OF_ONE, type: 'other', dedupeKey: 'other' })]);
    expect(await rowCounts(stub)).toEqual({ claims: 2, sends: 2 });
    expect(await rowsWrittenBy(stub, (recipient) => recipient.complete([done(req.deliveryId, false)]))).toBe(
      2,
    );
    expect(await rowCounts(stub)).toEqual({ claims: 1, sends: 1 });
  });

  it('deletes only the claim of a delivery that was not sent when its send was held in memory', async () => {
    const stub = freshRecipient();
    const req = request({ dedupeKey: 'k' });
    await stub.decide([req, request({ dedupeKey: 'other' })]);
    expect(await rowCounts(stub)).toEqual({ claims: 2, sends: 0 });
    expect(await rowsWrittenBy(stub, (recipient) => recipient.complete([done(req.deliveryId, false)]))).toBe(
      1,
    );
    expect(await rowCounts(stub)).toEqual({ claims: 1, sends: 0 });
  });
});

describe('cleanup alarm', () => {
  it('deletes expired claims and sends, then sets no alarm on an empty object', async () => {
    const stub = freshRecipient();
    const startMs = Date.now();
    const twoDaysAgo = startMs - 2 * DAY;
    await stub.decide([
      request({ ...CAP_OF_ONE, nowMs: twoDaysAgo, dedupeKey: 'k' }),
      request({ ...CAP_OF_ONE, nowMs: twoDaysAgo, channel: 'email', dedupeKey: 'k' }),
    ]);
    expect(await rowCounts(stub)).toEqual({ claims: 2, sends: 2 });
    // Rows that expired already still wait for the cleanup delay, not a moment sooner.
    await expectCleanupAlarm(stub, startMs);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 0 });
    expect(await pendingAlarm(stub)).toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });

  it('keeps live rows and sleeps until the next one expires', async () => {
    const stub = freshRecipient();
    const now = Date.now();
    await stub.decide([request({ nowMs: now - 2 * DAY, dedupeKey: 'old' })]);
    const fresh = request({ ...CAP_OF_ONE, nowMs: now, channel: 'email' });
    await stub.decide([fresh]);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await rowCounts(stub)).toEqual({ claims: 0, sends: 1 });
    const next = await pendingAlarm(stub);
    expect(next).toBeGreaterThanOrEqual(now + DAY);
    // Still answers from what is left: the fresh email counts, the old SMS no longer does.
    expect(await decideOne(stub, request({ nowMs: now + SECOND, dedupeKey: 'old' }))).toMatchObject({
      verdict: 'send',
    });
  });

  it('schedules nothing when nothing was written', async () => {
    const stub = freshRecipient();
    await stub.decide([request({ channel: 'webhook' }), request({ channel: 'webhook', priority: 'low' })]);
    expect(await pendingAlarm(stub)).toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });

  it('sets one alarm and leaves it alone while it is pending', async () => {
    const stub = freshRecipient();
    const startMs = Date.now();
    await stub.decide([request({ ...CAP_OF_ONE, nowMs: startMs })]);
    const first = await expectCleanupAlarm(stub, startMs);
    await evictDurableObject(stub);
    await stub.decide([request({ ...CAP_OF_ONE, nowMs: Date.now() + HOUR, channel: 'email' })]);
    expect(await pendingAlarm(stub)).toBe(first);
  });
});

describe('eviction', () => {
  it('keeps dedupe claims and the sends of a full burst across eviction, but not leases', async () => {
    const stub = freshRecipient();
    const burst = smsBurst(5, T0);
    const claimant = request({ channel: 'email', dedupeKey: 'invoice-7' });
    await stub.decide([...burst, claimant]);
    expect(await rowCounts(stub)).toEqual({ claims: 1, sends: 5 });

    await evictDurableObject(stub);

    const at = T0 + 10 * MINUTE;
    expect(
      await stub.decide([
        request({ nowMs: at }),
        request({ nowMs: at, channel: 'email', dedupeKey: 'invoice-7' }),
        { ...(burst[4] as DecisionRequest), nowMs: at },
      ]),
    ).toEqual([
      { verdict: 'defer', untilMs: T0 + HOUR },
      { verdict: 'duplicate', firstDeliveryId: claimant.deliveryId },
      // Accepted trade-off: leases live in memory, so an eviction forgets them.
      { verdict: 'send', leaseUntilMs: at + LEASE },
    ]);
  });

  /** A fresh object that decided on `requests`, then was evicted. */
  async function evictedAfter(requests: DecisionRequest[]): Promise<Stub> {
    const stub = freshRecipient();
    await stub.decide(requests);
    await evictDurableObject(stub);
    return stub;
  }

  it('still counts a burst that reached half a cap after eviction', async () => {
    const stub = await evictedAfter(smsBurst(3, T0));
    expect(await verdictsOf(stub, smsBurst(3, T0 + 10 * MINUTE))).toEqual(sendsThenDefer(2));
  });

  it('keeps a cap of 1 exact across eviction', async () => {
    const stub = await evictedAfter([request({ ...CAP_OF_ONE, channel: 'email' })]);
    expect(await decideOne(stub, request({ ...CAP_OF_ONE, channel: 'email', nowMs: T0 + MINUTE }))).toEqual({
      verdict: 'defer',
      untilMs: T0 + HOUR,
    });
  });

  it('forgets sends held only in memory (accepted trade-off: a slow trickle counts only while the object lives)', async () => {
    const stub = await evictedAfter(smsBurst(2, T0));
    // Alive, the object would let 3 more through; evicted, it lets 5, a full cap.
    expect(await verdictsOf(stub, smsBurst(6, T0 + 10 * MINUTE))).toEqual(sendsThenDefer(5));
  });

  it('counts sends held in memory while the object lives', async () => {
    const stub = freshRecipient();
    await stub.decide(smsBurst(2, T0));
    expect(await verdictsOf(stub, smsBurst(4, T0 + 10 * MINUTE))).toEqual(sendsThenDefer(3));
  });
});
