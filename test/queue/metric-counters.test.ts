import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Env } from '../../src/config/env';
import { createServices } from '../../src/services/container';
import { p1363ToDer, sendgridSigningKey } from '../callbacks/helpers';
import { api, json, testEnv } from '../helpers/api';
import { readDeliveries, readDelivery, statusesOf } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import {
  atTime,
  type CapturedEnv,
  deadLetter,
  drainQueue,
  envWithCapturedQueues,
  resendSendgridEnv,
  runCron,
  sendNotification,
  unusedCronTime,
} from '../helpers/queues';
import { allShards, everyDatabase, userInShard } from '../helpers/shards';

// Herald's Prometheus counters (herald_*_total) read through GET /metrics, after traffic through the
// Worker's fetch, queue and scheduled handlers. Each test uses notification types of its own (made
// here through the templates API), and reads `?type=` them, so other tests' traffic never counts.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** A notification type no other test uses: an email and an SMS template. */
async function newType(name: string): Promise<string> {
  const type = `ctr_${name}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  const email = { parts: { subject: 'Order {{ order }}', text: 'Order {{ order }} shipped' } };
  expect((await api('PUT', `/v1/templates/${type}/email`, email)).status).toBe(200);
  expect(
    (await api('PUT', `/v1/templates/${type}/sms`, { parts: { text: 'Order {{ order }}' } })).status,
  ).toBe(200);
  return type;
}

/** Counter samples as `name{label="value",…}` (labels sorted) → value, from the parsed text. */
type Samples = Map<string, number>;

const sampleKey = (name: string, labels: Record<string, string> = {}) =>
  `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(',')}}`;

/** GET /metrics (optionally of one type), parsed by parse-prometheus-text-format. */
async function scrape(type?: string, env?: Env) {
  const res = await api('GET', `/metrics${type ? `?type=${type}` : ''}`, undefined, env ? { env } : {});
  expect(res.status).toBe(200);
  return parsePrometheusTextFormat(await res.text());
}

/** The counter samples of one type. */
async function counters(type: string): Promise<Samples> {
  const samples: Samples = new Map();
  for (const family of await scrape(type)) {
    if (family.type !== 'COUNTER') continue;
    for (const metric of family.metrics)
      samples.set(sampleKey(family.name, metric.labels), Number(metric.value));
  }
  return samples;
}

/** Every sample of `after` is at least what it was in `before` (and none went missing). */
function expectGrown(before: Samples, after: Samples) {
  for (const [key, value] of before) expect(after.get(key) ?? -1, key).toBeGreaterThanOrEqual(value);
}

const deliveries = (channel: string, type: string, status: string) =>
  sampleKey('herald_deliveries_total', { channel, status, type });
const accepted = (type: string) => sampleKey('herald_notifications_accepted_total', { type });
const providerErrors = (channel: string, provider: string, errorClass: string) =>
  sampleKey('herald_provider_errors_total', { channel, class: errorClass, provider });

const order = (type: string, recipients: unknown[], extra: Record<string, unknown> = {}) => ({
  type,
  recipients,
  channels: ['email'],
  data: { order: 'A-1001' },
  ...extra,
});

const email = (name: string) => ({ userId: userInShard(0, name), email: `${name}@example.com` });

// --- SendGrid's signed event webhook (ECDSA P-256 over timestamp + body), as the provider signs it ---
let sendgridKey: CryptoKey;
let callbackEnv: Env;

beforeAll(async () => {
  const key = await sendgridSigningKey();
  sendgridKey = key.privateKey;
  callbackEnv = { ...testEnv, SENDGRID_WEBHOOK_PUBLIC_KEY: key.publicKeyBase64 } as Env;
});

async function sendgridEvents(events: Record<string, unknown>[]): Promise<Response> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const body = JSON.stringify(
    events.map((e) => ({ timestamp: Number(timestamp), sg_event_id: crypto.randomUUID(), ...e })),
  );
  const signature = new Uint8Array(
    await crypto.subtle.sign(
      { name: 'ECDSA', hash: 'SHA-256' },
      sendgridKey,
      new TextEncoder().encode(timestamp + body),
    ),
  );
  return api('POST', '/v1/webhooks/sendgrid', body, {
    key: null,
    env: callbackEnv,
    headers: {
      'Content-Type': 'application/json',
      'X-Twilio-Email-Event-Webhook-Signature': btoa(String.fromCharCode(...p1363ToDer(signature))),
      'X-Twilio-Email-Event-Webhook-Timestamp': timestamp,
    },
  });
}

describe('GET /metrics counters', () => {
  it('parse as Prometheus counters beside the gauges: HELP, TYPE counter, names ending _total', async () => {
    const families = new Map((await scrape()).map((f) => [f.name, f]));
    for (const name of [
      'herald_deliveries_total',
      'herald_notifications_accepted_total',
      'herald_provider_errors_total',
    ]) {
      expect(families.get(name)?.type, name).toBe('COUNTER');
      expect(families.get(name)?.help, name).not.toBe('');
    }
    // The gauges over the window stay, and every counter family is one of the three.
    expect(families.get('herald_deliveries')?.type).toBe('GAUGE');
    expect(families.get('herald_send_latency_seconds')?.type).toBe('SUMMARY');
    const counterNames = [...families.values()].filter((f) => f.type === 'COUNTER').map((f) => f.name);
    expect(counterNames.every((name) => name.endsWith('_total'))).toBe(true);
    expect(counterNames).toHaveLength(3);
  });

  it('count sends, a provider failure and callbacks: each status change once', async () => {
    const type = await newType('flow');
    const captured = resendSendgridEnv();
    // Two delivered after Resend failed over to SendGrid, one Resend refused for good. The first
    // carries the producer's own id, and is sent twice: the second is a replay that writes nothing.
    const okBody = order(type, [email('ok')], { id: `ord-${type}` });
    const ok = await sendNotification(captured, okBody);
    expect((await api('POST', '/v1/notifications', okBody, captured)).status).toBe(202);
    const bounce = await sendNotification(captured, order(type, [email('bounce')]));
    const bad = await sendNotification(captured, order(type, [email('bad')]));
    fakeFetch((url, init) => {
      if (!url.startsWith('https://api.resend.com'))
        return new Response(null, { status: 202, headers: { 'X-Message-Id': 'sg-1' } });
      return String(init?.body).includes('bad@example.com')
        ? new Response('{"name":"validation_error","message":"invalid to"}', { status: 422 })
        : new Response('{"name":"internal_server_error"}', { status: 503 });
    });
    await drainQueue(captured, 'email');
    const [okId = '', bounceId = '', badId = ''] = [ok, bounce, bad].map((n) => n.deliveries[0]?.id);
    expect((await readDelivery(bad.id)).status).toBe('failed');

    // One callback, two events for each of two deliveries: delivered then opened (both count), and
    // bounced then an open the state machine refuses after a bounce (no count). Then the open
    // again, and a delivery event for the failed one (refused too): nothing more.
    const first = await sendgridEvents([
      { event: 'delivered', delivery_id: okId },
      { event: 'bounce', delivery_id: bounceId, status: '5.1.1', reason: '550 unknown' },
      { event: 'open', delivery_id: okId },
      { event: 'open', delivery_id: bounceId },
    ]);
    expect(first.status).toBe(200);
    expect((await sendgridEvents([{ event: 'open', delivery_id: okId }])).status).toBe(200);
    expect((await sendgridEvents([{ event: 'delivered', delivery_id: badId }])).status).toBe(200);
    expect([(await readDelivery(ok.id)).status, (await readDelivery(bounce.id)).status]).toEqual([
      'opened',
      'bounced',
    ]);

    expect(Object.fromEntries(await counters(type))).toEqual({
      [accepted(type)]: 3,
      [deliveries('email', type, 'created')]: 3,
      [deliveries('email', type, 'queued')]: 3,
      [deliveries('email', type, 'sent')]: 2,
      [deliveries('email', type, 'failed')]: 1,
      [deliveries('email', type, 'delivered')]: 1,
      [deliveries('email', type, 'opened')]: 1,
      [deliveries('email', type, 'bounced')]: 1,
      [providerErrors('email', 'resend', 'retryable')]: 2,
      [providerErrors('email', 'resend', 'permanent')]: 1,
    });
  });

  it('a commit D1 rolls back counts nothing; the answer it carried counts once when recorded', async () => {
    const type = await newType('rollback');
    const state = { armed: false, failed: false };
    const captured = resendSendgridEnv(everyDatabase((db) => failingOnceAtOutcome(db, state)));
    const accepted1 = await sendNotification(captured, order(type, [email('rollback')]));
    state.armed = true;
    fakeFetch((url) =>
      url.startsWith('https://api.resend.com')
        ? new Response('{"name":"internal_server_error"}', { status: 503 })
        : new Response(null, { status: 202, headers: { 'X-Message-Id': 'sg-2' } }),
    );
    // The outcome's batch ran its count and its UPDATE, then failed: D1 rolled all of it back.
    await drainQueue(captured, 'email');
    expect(state.failed).toBe(true);
    expect((await readDelivery(accepted1.id)).status).toBe('queued');
    const afterFailure = await counters(type);
    expect(afterFailure.get(deliveries('email', type, 'sent'))).toBeUndefined();
    expect(afterFailure.get(providerErrors('email', 'resend', 'retryable'))).toBeUndefined();
    // The answer travelled with its id; the next consumer records it (no provider is asked again).
    const calls = fakeFetch(() => new Response('unexpected', { status: 500 }));
    await drainQueue(captured, 'email');
    expect(calls).toEqual([]);
    expect((await readDelivery(accepted1.id)).status).toBe('sent');
    const recorded = await counters(type);
    expect(recorded.get(deliveries('email', type, 'sent'))).toBe(1);
    expect(recorded.get(providerErrors('email', 'resend', 'retryable'))).toBe(1);
    // A redelivered copy of that message records nothing more.
    await drainQueueAgain(captured, accepted1.deliveries[0]?.id ?? '');
    expect(await counters(type)).toEqual(recorded);
  });

  it('only grow across a retention run that archives and removes the rows they counted', async () => {
    const type = await newType('retention');
    // Before any other test's rows (the earliest are of 2001): this run removes only its own.
    const at = Date.UTC(2000, 5, 1, 3, 0) + Math.floor(Math.random() * 50) * MINUTE;
    const captured = envWithCapturedQueues();
    const sent = await atTime(at, async () => {
      const a = await sendNotification(captured, order(type, [email('old')]));
      await drainQueue(captured, 'email');
      return a;
    });
    const ids = sent.deliveries.map((d) => d.id);
    const before = await counters(type);
    expect(before.get(deliveries('email', type, 'sent'))).toBe(1);

    const res = await api('POST', '/v1/admin/retention/run', { before: new Date(at + HOUR).toISOString() });
    expect(res.status).toBe(200);
    expect((await json<{ removed: number }>(res)).removed).toBeGreaterThanOrEqual(1);
    expect((await statusesOf(ids)).size).toBe(0);
    const after = await counters(type);
    expect(after).toEqual(before);

    // And go on from there.
    await sendNotification(captured, order(type, [email('new')]));
    const next = await counters(type);
    expectGrown(after, next);
    expect(next.get(deliveries('email', type, 'created'))).toBe(2);
  });

  it('add up every database: a notification with a part in each shard counts once, its rows each where they are', async () => {
    const type = await newType('shards');
    const captured = envWithCapturedQueues();
    const users = [userInShard(0, 'ctr'), userInShard(1, 'ctr')];
    await sendNotification(
      captured,
      order(
        type,
        users.map((userId, i) => ({ userId, email: `shard${i}@example.com` })),
      ),
    );
    await drainQueue(captured, 'email');
    expect(Object.fromEntries(await counters(type))).toEqual({
      [accepted(type)]: 1,
      [deliveries('email', type, 'created')]: 2,
      [deliveries('email', type, 'queued')]: 2,
      [deliveries('email', type, 'sent')]: 2,
    });
    // Each shard holds the counts of its own rows (the first part's also the notification).
    const perShard = await Promise.all(
      allShards().map(async (shard) => {
        const row = await shard.db
          .prepare('SELECT counts FROM metric_counters WHERE type = ?')
          .bind(type)
          .first<{ counts: string }>();
        return JSON.parse(row?.counts ?? '{}') as Record<string, number>;
      }),
    );
    expect(perShard).toEqual([
      {
        accepted: 1,
        'deliveries/email/created': 1,
        'deliveries/email/queued': 1,
        'deliveries/email/sent': 1,
      },
      { 'deliveries/email/created': 1, 'deliveries/email/queued': 1, 'deliveries/email/sent': 1 },
    ]);
  });
});

describe('counted once on every path that moves a status', () => {
  it('the sweeper queues a row the queue refused at ingest; a second run counts nothing', async () => {
    const type = await newType('sweeper');
    const captured = envWithCapturedQueues();
    const at = unusedCronTime();
    captured.queues.email.fail = true;
    const sent = await atTime(at - 10 * MINUTE, () =>
      sendNotification(captured, order(type, [email('swept')])),
    );
    expect(sent.deliveries[0]?.status).toBe('created');
    expect((await counters(type)).get(deliveries('email', type, 'queued'))).toBeUndefined();
    captured.queues.email.fail = false;
    await atTime(at, () => runCron(captured.env, at));
    await atTime(at + MINUTE, () => runCron(captured.env, at + MINUTE));
    expect(captured.queues.email.ids()).toEqual([sent.deliveries[0]?.id]);
    expect(Object.fromEntries(await counters(type))).toEqual({
      [accepted(type)]: 1,
      [deliveries('email', type, 'created')]: 1,
      [deliveries('email', type, 'queued')]: 1,
    });
  });

  it('the reaper counts a row it moves, not one it re-enqueues in the status it has', async () => {
    const type = await newType('reaper');
    const captured = envWithCapturedQueues();
    const at = unusedCronTime(true);
    // Accepted 14 h before the hourly run and never touched again: its message is gone.
    const sent = await atTime(at - 14 * HOUR, () => sendNotification(captured, order(type, [email('lost')])));
    const before = await counters(type);
    expect(before.get(deliveries('email', type, 'queued'))).toBe(1);
    await atTime(at, () => runCron(captured.env, at));
    expect(captured.queues.email.ids()).toEqual([sent.deliveries[0]?.id, sent.deliveries[0]?.id]);
    expect((await readDelivery(sent.id)).history.at(-1)).toMatchObject({
      reason: 're-enqueued by the reaper',
    });
    expect(await counters(type)).toEqual(before);
  });

  it('an answer recorded after a callback moved the delivery further counts its errors, not a status', async () => {
    const type = await newType('late');
    const captured = resendSendgridEnv();
    const sent = await sendNotification(captured, order(type, [email('late')]));
    // SendGrid's delivery report lands while the consumer still waits for SendGrid's own answer.
    fakeFetch(async (url) => {
      if (url.startsWith('https://api.resend.com'))
        return new Response('{"name":"internal_server_error"}', { status: 503 });
      expect(
        (await sendgridEvents([{ event: 'delivered', delivery_id: sent.deliveries[0]?.id }])).status,
      ).toBe(200);
      return new Response(null, { status: 202, headers: { 'X-Message-Id': 'sg-3' } });
    });
    await drainQueue(captured, 'email');
    // The answer adds the provider to the row and leaves it `delivered`: it never was `sent`.
    const d = await readDelivery(sent.id);
    expect([d.status, d.provider]).toEqual(['delivered', 'sendgrid']);
    const samples = await counters(type);
    expect(samples.get(deliveries('email', type, 'delivered'))).toBe(1);
    expect(samples.get(deliveries('email', type, 'sent'))).toBeUndefined();
    expect(samples.get(providerErrors('email', 'resend', 'retryable'))).toBe(1);
  });

  it('a provider error answered after a cancel counts, though the canceled row refuses the answer', async () => {
    const type = await newType('race');
    const captured = resendSendgridEnv({ EMAIL_PROVIDERS: 'resend' });
    const sent = await sendNotification(captured, order(type, [email('race')]));
    fakeFetch(async () => {
      expect((await api('DELETE', `/v1/notifications/${sent.id}`)).status).toBe(200);
      return new Response('{"name":"validation_error","message":"invalid to"}', { status: 422 });
    });
    await drainQueue(captured, 'email');
    expect((await readDelivery(sent.id)).status).toBe('canceled');
    const samples = await counters(type);
    expect(samples.get(deliveries('email', type, 'canceled'))).toBe(1);
    expect(samples.get(deliveries('email', type, 'failed'))).toBeUndefined();
    expect(samples.get(providerErrors('email', 'resend', 'permanent'))).toBe(1);
  });

  it('a travelling answer recorded twice (two consumers with one message) counts once', async () => {
    const type = await newType('twice');
    const captured = envWithCapturedQueues();
    const sent = await sendNotification(captured, order(type, [email('twice')]));
    const outcome = {
      deliveryId: sent.deliveries[0]?.id ?? '',
      status: 'sent' as const,
      provider: 'resend',
      attempted: true,
      errors: [{ provider: 'sendgrid', class: 'unknown' as const }],
    };
    const services = createServices(testEnv);
    for (let i = 0; i < 2; i++)
      await services.commit(services.deliveries.outcomeStatements([outcome], Date.now()));
    const samples = await counters(type);
    expect(samples.get(deliveries('email', type, 'sent'))).toBe(1);
    expect(samples.get(providerErrors('email', 'sendgrid', 'unknown'))).toBe(1);
  });

  it('a cancel counts each delivery it stops once; cancelling again counts nothing', async () => {
    const type = await newType('cancel');
    const captured = envWithCapturedQueues();
    const sendAt = new Date(Date.now() + HOUR).toISOString();
    const sent = await sendNotification(captured, {
      ...order(type, [email('cancel')]),
      channels: ['email', 'sms'],
      recipients: [{ userId: userInShard(1, 'cancel'), email: 'c@example.com', phone: '+14155550100' }],
      sendAt,
    });
    expect((await api('DELETE', `/v1/notifications/${sent.id}`)).status).toBe(200);
    expect((await api('DELETE', `/v1/notifications/${sent.id}`)).status).toBe(200);
    const samples = await counters(type);
    expect(samples.get(deliveries('email', type, 'canceled'))).toBe(1);
    expect(samples.get(deliveries('sms', type, 'canceled'))).toBe(1);
  });

  it('the dead-letter consumer counts the failure once, however often the message comes', async () => {
    const type = await newType('dead');
    const captured = envWithCapturedQueues();
    const sent = await sendNotification(captured, order(type, [email('dead')]));
    const id = sent.deliveries[0]?.id ?? '';
    await deadLetter(captured.env, 'email', [id]);
    await deadLetter(captured.env, 'email', [id]);
    expect((await readDelivery(sent.id)).status).toBe('failed');
    expect((await counters(type)).get(deliveries('email', type, 'failed'))).toBe(1);
  });
});

describe("a provider answer's own commit writes its row alone; the batch's commit counts it", () => {
  /** Three answers in shard 0 (sent; sent after Resend failed over; failed) and one in shard 1 (sent after a failover). */
  async function threeAnswers(name: string, watch: Watch) {
    const type = await newType(name);
    const captured = resendSendgridEnv(everyDatabase((db, binding) => watched(db, binding, watch)));
    const recipients = [
      email(`${name}-ok`),
      email(`${name}-retry`),
      email(`${name}-bad`),
      { userId: userInShard(1, name), email: `${name}-other-retry@example.com` },
    ];
    const sent = await sendNotification(captured, order(type, recipients));
    fakeFetch((url, init) => {
      const body = String(init?.body);
      if (!url.startsWith('https://api.resend.com'))
        return new Response(null, { status: 202, headers: { 'X-Message-Id': 'sg-9' } });
      if (body.includes('-bad@')) return new Response('{"name":"validation_error"}', { status: 422 });
      if (body.includes('-retry@')) return new Response('{"name":"internal_server_error"}', { status: 503 });
      return new Response('{"id":"re-1"}', { status: 200 });
    });
    watch.armed = true;
    await drainQueue(captured, 'email');
    watch.armed = false;
    return { type, captured, sent, ids: sent.deliveries.map((d) => d.id) };
  }

  /** What the four answers count, all of them, once. */
  const counted = (type: string) => ({
    [accepted(type)]: 1,
    [deliveries('email', type, 'created')]: 4,
    [deliveries('email', type, 'queued')]: 4,
    [deliveries('email', type, 'sent')]: 3,
    [deliveries('email', type, 'failed')]: 1,
    [providerErrors('email', 'resend', 'retryable')]: 2,
    [providerErrors('email', 'resend', 'permanent')]: 1,
  });

  it('one row written per answer (its delivery), then one counter row per database for the batch', async () => {
    const watch = newWatch();
    const { type, ids } = await threeAnswers('alone', watch);
    const answers = watch.seen.filter((b) => b.sql.some((q) => OUTCOME_UPDATE.test(q)));
    expect(answers).toHaveLength(4);
    for (const answer of answers) {
      expect(answer.sql.some((q) => q.includes('metric_counters'))).toBe(false);
      expect(answer.rowsWritten).toBe(1);
    }
    // The batch's commit: one statement per database adding the answers' counts, one row each.
    const counts = watch.seen.filter((b) => b.sql.some((q) => q.includes('INSERT INTO metric_counters')));
    expect(counts.map((b) => [b.sql.length, b.rowsWritten])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(new Set(counts.map((b) => b.binding)).size).toBe(2);
    expect(Object.fromEntries(await counters(type))).toEqual(counted(type));
    expect((await statusesOf(ids)).size).toBe(4);
  });

  it("a batch's commit refused in one database: its answers' counts are added alone once, the other database's not again", async () => {
    const watch = newWatch({ refuse: 1, in: allShards()[1]?.name });
    const { type, captured, ids } = await threeAnswers('refused', watch);
    const tries = watch.seen.filter((b) => b.sql.some((q) => q.includes('INSERT INTO metric_counters')));
    // Shard 0's commit once; shard 1's rolled back part-way, then its counts alone.
    const rowsIn = (index: number) =>
      tries.filter((b) => b.binding === allShards()[index]?.name).map((b) => b.rowsWritten);
    expect([rowsIn(0), rowsIn(1)]).toEqual([[1], [null, 1]]);
    const after = await counters(type);
    expect(Object.fromEntries(after)).toEqual(counted(type));
    // The messages come again (a consumer that died before acking): the rows are final, nothing counts.
    for (const id of ids) await drainQueueAgain(captured, id);
    expect(await counters(type)).toEqual(after);
  });

  it('refused twice, the counts are lost and logged, never added later; a refusal that may have landed is not tried again', async () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => void errors.push(String(line)));
    const watch = newWatch({ refuse: 2, in: allShards()[0]?.name });
    const { type, captured, ids } = await threeAnswers('lost', watch);
    const lost = errors
      .map((e) => JSON.parse(e) as Record<string, unknown>)
      .filter((e) => e.event === 'metrics.counts_lost');
    expect(lost).toMatchObject([{ channel: 'email', answers: 3, counts: 5 }]);
    const samples = await counters(type);
    // Shard 1's answer is counted; shard 0's three are not (an undercount, never a double count).
    expect(samples.get(deliveries('email', type, 'sent'))).toBe(1);
    expect(samples.get(deliveries('email', type, 'failed'))).toBeUndefined();
    expect(samples.get(providerErrors('email', 'resend', 'retryable'))).toBe(1);
    expect(samples.get(providerErrors('email', 'resend', 'permanent'))).toBeUndefined();
    for (const id of ids) await drainQueueAgain(captured, id);
    expect(await counters(type)).toEqual(samples);

    // D1 answering that the connection was lost: the write may have landed, so no second try.
    errors.length = 0;
    const unsure = newWatch({
      refuse: 1,
      in: allShards()[0]?.name,
      error: 'D1_ERROR: Network connection lost.',
    });
    const second = await threeAnswers('unsure', unsure);
    const tries = unsure.seen.filter((b) => b.sql.some((q) => q.includes('INSERT INTO metric_counters')));
    expect(tries.filter((b) => b.binding === allShards()[0]?.name)).toHaveLength(1);
    expect(
      errors
        .map((e) => JSON.parse(e) as Record<string, unknown>)
        .filter((e) => e.event === 'metrics.counts_lost'),
    ).toMatchObject([{ answers: 3, counts: 5, mayHaveLanded: true }]);
    expect((await counters(second.type)).get(deliveries('email', second.type, 'failed'))).toBeUndefined();
  });

  it("a consumer dying between its answers and its batch's commit: those counts are lost, the messages again count nothing", async () => {
    const watch = newWatch({ refuse: 1, in: allShards()[0]?.name, error: 'the consumer died', fatal: true });
    const { type, captured, ids, sent } = await threeAnswers('crash', watch);
    expect((await readDeliveries(sent.id)).map((d) => d.status).sort()).toEqual([
      'failed',
      'sent',
      'sent',
      'sent',
    ]);
    // The whole batch failed: its messages come again, and find every row final.
    const samples = await counters(type);
    for (const id of ids) await drainQueueAgain(captured, id);
    expect(await counters(type)).toEqual(samples);
    expect(samples.get(deliveries('email', type, 'failed'))).toBeUndefined();
    expect(samples.get(providerErrors('email', 'resend', 'permanent'))).toBeUndefined();
    expect(samples.get(deliveries('email', type, 'sent')) ?? 0).toBeLessThanOrEqual(1);
  });
});

/** The statement recording an outcome (`outcomeStatement`). */
const OUTCOME_UPDATE = /UPDATE deliveries SET[\s\S]*provider_message_id/;

/** Every D1 batch a database ran while armed: its statements' SQL and the rows it wrote (null: refused). */
interface Watch {
  armed: boolean;
  seen: { binding: string; sql: string[]; rowsWritten: number | null }[];
  /** How many batches adding counts to refuse (in the database `in` only), and with which error. */
  refuse: number;
  in?: string | undefined;
  error?: string;
  /** The refusal ends the consumer (as its death would: nothing may catch it). */
  fatal?: boolean;
}

const newWatch = (refusal: Partial<Pick<Watch, 'refuse' | 'in' | 'error' | 'fatal'>> = {}): Watch => ({
  armed: false,
  seen: [],
  refuse: 0,
  ...refusal,
});

/**
 * A database that records each batch it runs while `watch.armed`, with the rows D1 says it wrote;
 * and refuses the first `watch.refuse` batches adding counts in the database `watch.in`: by
 * failing on one more statement after all of them (D1 rolls the batch back, as when it refuses
 * a commit part-way), or, given `watch.error`, by throwing that before running anything.
 */
function watched(db: D1Database, binding: string, watch: Watch): D1Database {
  const sqlOf = new WeakMap<D1PreparedStatement, string>();
  const mark = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
    sqlOf.set(statement, sql);
    const bind = statement.bind.bind(statement);
    statement.bind = (...values: unknown[]) => mark(bind(...values), sql);
    return statement;
  };
  return new Proxy(db, {
    get(target, property) {
      if (property === 'prepare') return (sql: string) => mark(target.prepare(sql), sql);
      if (property === 'batch')
        return async (statements: D1PreparedStatement[]) => {
          if (!watch.armed) return target.batch(statements);
          const sql = statements.map((s) => sqlOf.get(s) ?? '');
          const seen: Watch['seen'][number] = { binding, sql, rowsWritten: null };
          watch.seen.push(seen);
          if (
            watch.refuse > 0 &&
            binding === watch.in &&
            sql.some((q) => q.includes('INSERT INTO metric_counters'))
          ) {
            watch.refuse -= 1;
            if (watch.error) throw Object.assign(new Error(watch.error), watch.fatal ? { fatal: true } : {});
            const failing = target.prepare("INSERT INTO metric_counters (type, counts) VALUES ('x', NULL)");
            return target.batch([...statements, failing]);
          }
          const results = await target.batch(statements);
          seen.rowsWritten = results.reduce((sum, r) => sum + (r.meta.rows_written ?? 0), 0);
          return results;
        };
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * A database whose first batch recording an outcome, once armed, runs all its statements and then
 * fails on one more (a NOT NULL violation): D1 rolls the whole batch back, as when it refuses a
 * commit part-way. A count written in any other batch would stand.
 */
function failingOnceAtOutcome(db: D1Database, state: { armed: boolean; failed: boolean }): D1Database {
  const outcomes = new WeakSet<D1PreparedStatement>();
  const mark = (statement: D1PreparedStatement): D1PreparedStatement => {
    outcomes.add(statement);
    const bind = statement.bind.bind(statement);
    statement.bind = (...values: unknown[]) => mark(bind(...values));
    return statement;
  };
  return new Proxy(db, {
    get(target, property) {
      if (property === 'prepare')
        return (sql: string) => {
          const statement = target.prepare(sql);
          return /UPDATE deliveries SET[\s\S]*provider_message_id/.test(sql) ? mark(statement) : statement;
        };
      if (property === 'batch')
        return (statements: D1PreparedStatement[]) => {
          if (!state.armed || state.failed || !statements.some((s) => outcomes.has(s)))
            return target.batch(statements);
          state.failed = true;
          const failing = target.prepare("INSERT INTO metric_counters (type, counts) VALUES ('x', NULL)");
          return target.batch([...statements, failing]);
        };
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Runs the email consumer once more on a plain message for this id (a redelivered copy). */
async function drainQueueAgain(captured: CapturedEnv, id: string) {
  captured.queues.email.sent.push({ body: { v: 1, deliveryIds: [id], attempt: 0 } });
  await drainQueue(captured, 'email');
}
