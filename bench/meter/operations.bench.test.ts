import {
  createExecutionContext,
  createScheduledController,
  evictAllDurableObjects,
  runInDurableObject,
  waitOnExecutionContext,
} from 'cloudflare:test';
import { expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import { CHANNELS, type Channel } from '../../src/domain/channels';
import worker from '../../src/index';
import { PROVIDERS_VAR } from '../../src/providers/registry';
import type { QueueMessage } from '../../src/queue/messages';
import { createServices } from '../../src/services/container';
import { recipientKey } from '../../src/services/delivery/recipient-gate';
import { api, FCM_TOKEN, json, SLACK_URL, testEnv } from '../../test/helpers/api';
import { CapturingQueue, envWithCapturedQueues, runConsumer } from '../../test/helpers/queues';
import type { DurableObjectStorageCounts } from './costs';
import {
  addCounts,
  type Counts,
  type FakeHost,
  METER_WEBHOOK_URL,
  Meter,
  meterEnv,
  meterFetch,
  realProviders,
} from './metered-env';
import { type MeterReport, renderReport, type ScenarioResult, type TopicFigures } from './report';

/**
 * The operation meter: runs real traffic through the Worker's fetch() and queue() handlers inside
 * workerd, with every binding wrapped in a counting proxy and the real provider modules calling a
 * fake network, and prices what one delivery costs.
 * Run with `npx vitest run -c bench/meter/vitest.meter.config.ts` (not part of `npm test`).
 */

const meterEnvVars = testEnv as unknown as { METER_NOTIFICATIONS?: string };
const N = Number(meterEnvVars.METER_NOTIFICATIONS ?? 1000);
const PER_REQUEST = 100;
const CONSUMER_BATCH = 100;
const SINGLE_N = Math.max(10, Math.round(N / 10));
const TYPE = 'order_shipped';
const DATA = { order_id: 'A-1001', carrier: 'DHL', eta: 'Tuesday' };
/** The channels TYPE has templates for: what a notification without `channels` goes to. */
const TYPE_CHANNELS = CHANNELS.filter((c) => c !== 'inapp');
/** In-app items are metered with a type made for them (TYPE has no in-app template). */
const INAPP_TYPE = 'new_comment';
const INAPP_DATA = {
  author: 'Ada',
  subject: 'the roadmap',
  excerpt: 'Looks good',
  url: 'https://app.example.com/c/1',
};
const RUN = `meter_${Date.now().toString(36)}`;

interface AcceptedBody {
  id: string;
  deliveries: { id: string; channel: Channel; status: string }[];
}

/** One scenario: which notifications are sent, and how they are ingested. */
interface ScenarioPlan {
  name: string;
  type: string;
  /** The notification's channels; undefined sends to every channel with a template. */
  channels: Channel[] | undefined;
  count: number;
  /** Batch ingest (PER_REQUEST a request) or one notification per request. */
  batch: boolean;
  /** Each notification carries its own `id`, the producer's idempotency key. */
  producerIds: boolean;
  /** Notifications per user (a digest folds them): 1 when absent. */
  perUser?: number;
  /** ONE notification to a topic whose subscribers are the users (`count` of them), expanded by the topics queue. */
  topic?: boolean;
  /** The contacts this scenario sends to, reached by no other scenario. */
  users: string[];
}

/** A digest type (templates/comment_digest): maxItems 10, so the tenth of a user's carries the other nine. */
const DIGEST_TYPE = 'comment_digest';
const DIGEST_PER_USER = 10;
const DIGEST_DATA = { thread_id: 'roadmap', author: 'Ada', excerpt: 'Looks good', subject: 'the roadmap' };

/**
 * The topic fan-out: one notification to a topic of this many subscribers (the test env's shard map
 * spreads them over two databases), subscribed `SUBSCRIBE_CHUNK` a call.
 */
const TOPIC_SUBSCRIBERS = 2 * N;
const SUBSCRIBE_CHUNK = 1000;
/** The topics queue's consumer batch (wrangler.toml: herald-topics max_batch_size). */
const TOPIC_BATCH = 4;

const PLANS: Omit<ScenarioPlan, 'users'>[] = [
  ...CHANNELS.map((channel) => ({
    name: `${channel}, batch ingest`,
    type: channel === 'inapp' ? INAPP_TYPE : TYPE,
    channels: [channel],
    count: N,
    batch: true,
    producerIds: false,
  })),
  {
    name: 'all channels, batch ingest',
    type: TYPE,
    channels: undefined,
    count: N,
    batch: true,
    producerIds: false,
  },
  {
    name: 'all channels, single ingest',
    type: TYPE,
    channels: undefined,
    count: SINGLE_N,
    batch: false,
    producerIds: false,
  },
  {
    name: 'email, batch ingest, producer ids',
    type: TYPE,
    channels: ['email'],
    count: N,
    batch: true,
    producerIds: true,
  },
  {
    name: `email, digest of ${DIGEST_PER_USER} per user`,
    type: DIGEST_TYPE,
    channels: ['email'],
    count: N,
    batch: true,
    producerIds: false,
    perUser: DIGEST_PER_USER,
  },
  {
    name: `email, topic fan-out (${TOPIC_SUBSCRIBERS} subscribers)`,
    type: TYPE,
    channels: ['email'],
    count: TOPIC_SUBSCRIBERS,
    batch: false,
    producerIds: false,
    topic: true,
  },
];

/**
 * Contacts with every address, one Recipient object each (created up front, instrumented just
 * before their scenario). Each scenario gets its own, so none finds earlier sends in its
 * recipients' windows: every scenario measures the happy path.
 */
const usersOf = (plan: Omit<ScenarioPlan, 'users'>) => Math.ceil(plan.count / (plan.perUser ?? 1));
const users = Array.from({ length: PLANS.reduce((sum, p) => sum + usersOf(p), 0) }, (_, i) => `${RUN}_${i}`);
const SCENARIOS: ScenarioPlan[] = (() => {
  let next = 0;
  return PLANS.map((plan) => {
    const own = users.slice(next, next + usersOf(plan));
    next += usersOf(plan);
    return { ...plan, users: own };
  });
})();

/** Cursors of every SQL statement the Recipient objects ran, read for rows written at the end. */
const doCursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
let setAlarmCalls = 0;
const instrumented = new WeakSet<object>();

async function createContacts(): Promise<void> {
  for (let i = 0; i < users.length; i += 25) {
    await Promise.all(
      users.slice(i, i + 25).map(async (userId) => {
        const res = await api('PUT', `/v1/contacts/${userId}`, {
          email: `${userId}@example.com`,
          phone: '+14155550123',
          deviceTokens: [{ deviceToken: FCM_TOKEN, platform: 'fcm' }],
          externalChannels: [
            { platform: 'slack', url: SLACK_URL },
            { platform: 'webhook', url: METER_WEBHOOK_URL },
          ],
        });
        expect(res.status).toBe(200);
      }),
    );
  }
}

/**
 * Wakes each recipient's object (its constructor creates the schema, as in steady state) and
 * wraps its `sql.exec` and `setAlarm`, so rows written are measured where SQLite counts them;
 * with `inboxes`, each user's Inbox object too (the in-app scenario appends to it).
 * Done per scenario, just before it: the objects of earlier scenarios are evicted by then (each
 * live object holds its SQLite files open, and thousands at once exhaust workerd's file handles).
 */
async function instrumentRecipients(recipients: readonly string[], inboxes: boolean): Promise<void> {
  for (let i = 0; i < recipients.length; i += 25) {
    await Promise.all(recipients.slice(i, i + 25).map((userId) => instrumentRecipient(userId, inboxes)));
  }
}

async function instrumentRecipient(userId: string, inbox: boolean): Promise<void> {
  const key = await recipientKey(userId, { channel: 'email', email: `${userId}@example.com` });
  await instrumentObject(testEnv.RECIPIENT.get(testEnv.RECIPIENT.idFromName(key)));
  if (inbox) await instrumentObject(testEnv.INBOX.get(testEnv.INBOX.idFromName(userId)));
}

async function instrumentObject(stub: DurableObjectStub<undefined>): Promise<void> {
  await runInDurableObject(stub, (_instance, state) => {
    if (instrumented.has(state)) return;
    instrumented.add(state);
    const sql = state.storage.sql;
    const exec = sql.exec.bind(sql);
    (sql as { exec: SqlStorage['exec'] }).exec = ((query: string, ...bindings: unknown[]) => {
      const cursor = exec(query, ...bindings);
      doCursors.push(cursor);
      return cursor;
    }) as SqlStorage['exec'];
    const setAlarm = state.storage.setAlarm.bind(state.storage);
    (state.storage as { setAlarm: DurableObjectStorage['setAlarm'] }).setAlarm = (...args) => {
      setAlarmCalls += 1;
      return setAlarm(...args);
    };
  });
}

/** Rows the Recipient objects wrote and read since the last call. */
function takeRecipientStorage(): DurableObjectStorageCounts {
  const counts = {
    rowsWritten: doCursors.reduce((s, c) => s + c.rowsWritten, 0),
    rowsRead: doCursors.reduce((s, c) => s + c.rowsRead, 0),
    setAlarmCalls,
  };
  doCursors.length = 0;
  setAlarmCalls = 0;
  return counts;
}

/** The real providers' env overrides and the fake network that answers them (set once, before the scenarios). */
let providers: { env: Record<string, string>; network: Record<string, FakeHost> };

/**
 * A fresh metered env: new binding objects (and a new env object, which keys the provider
 * instances), so the per-isolate caches and the FCM access token start cold, as in a new isolate.
 */
function freshEnv() {
  // The topics queue and its dead-letter queue capture too (their bodies are TopicPageMessage).
  const topics = new CapturingQueue();
  const topicsDlq = new CapturingQueue();
  const captured = envWithCapturedQueues({ ...providers.env, QUEUE_TOPICS: topics, DLQ_TOPICS: topicsDlq });
  const meter = new Meter();
  return {
    env: meterEnv(captured.env, meter),
    meter,
    queues: captured.queues,
    dlqs: captured.dlqs,
    topics,
    topicsDlq,
  };
}

/**
 * Creates the scenario's topic and subscribes its users (setup, counted apart: a subscription is
 * written once, not per send). Returns the topic's key and what subscribing cost.
 */
async function subscribeTopic(env: Env, meter: Meter, plan: ScenarioPlan) {
  const topic = `${RUN}_followers`;
  meter.counts.fetchRequests += 1;
  expect((await api('PUT', `/v1/topics/${topic}`, { name: 'meter followers' }, { env })).status).toBe(201);
  for (let i = 0; i < plan.users.length; i += SUBSCRIBE_CHUNK) {
    meter.counts.fetchRequests += 1;
    const res = await api(
      'POST',
      `/v1/topics/${topic}/subscribers`,
      { userIds: plan.users.slice(i, i + SUBSCRIBE_CHUNK) },
      { env },
    );
    expect(res.status).toBe(200);
  }
  const counts = meter.snapshot();
  meter.reset();
  return { topic, counts };
}

/** ONE notification to the topic: its 202 names the topic and carries no delivery. */
async function sendToTopic(env: Env, meter: Meter, plan: ScenarioPlan, topic: string): Promise<string> {
  meter.counts.fetchRequests += 1;
  const res = await api(
    'POST',
    '/v1/notifications',
    {
      type: plan.type,
      recipients: [{ topic }],
      data: DATA,
      ...(plan.channels ? { channels: plan.channels } : {}),
    },
    { env },
  );
  expect(res.status).toBe(202);
  const body = await json<AcceptedBody & { topics?: string[] }>(res);
  expect(body.topics).toEqual([topic]);
  expect(body.deliveries).toEqual([]);
  return body.id;
}

/**
 * Runs the captured topics queue through queue() in batches of TOPIC_BATCH until the expansion is
 * done: each page the consumer handles enqueues the next page of its database, so this takes one
 * round per page of the largest database. Returns the pages handled and the pages left over.
 */
async function expandTopics(env: Env, meter: Meter, topics: CapturingQueue) {
  let pages = 0;
  let invocations = 0;
  for (let round = 0; round < 1000 && topics.sent.length > 0; round += 1) {
    const pending = topics.sent.splice(0).map((m) => m.body);
    for (let i = 0; i < pending.length; i += TOPIC_BATCH) {
      const bodies = pending.slice(i, i + TOPIC_BATCH);
      invocations += 1;
      meter.counts.queueInvocations += 1;
      meter.counts.queueMessagesRead += bodies.length;
      const { result, messageIds } = await runConsumer(env, 'herald-topics', bodies);
      const retried = new Set(result.retryMessages.map((m) => m.msgId));
      if (result.retryBatch.retry) for (const id of messageIds) retried.add(id);
      meter.counts.queueRetries += retried.size;
      meter.counts.queueAcks += messageIds.length - retried.size;
      pages += messageIds.length - retried.size;
      messageIds.forEach((id, index) => {
        const body = bodies[index];
        if (retried.has(id) && body) topics.sent.push({ body });
      });
    }
  }
  return { pages, invocations, unconsumed: topics.sent.length };
}

/** The ids of a notification's deliveries in every database (read past the meter). */
async function deliveryIdsOf(notificationId: string): Promise<string[]> {
  const found = await Promise.all(
    Object.entries(testEnv)
      .filter(([name]) => /^DB(_\d+)?$/.test(name))
      .map(([, db]) =>
        (db as D1Database)
          .prepare('SELECT id FROM deliveries WHERE notification_id = ?')
          .bind(notificationId)
          .all<{ id: string }>(),
      ),
  );
  return found.flatMap((r) => r.results.map((row) => row.id));
}

async function ingest(env: Env, meter: Meter, plan: ScenarioPlan) {
  const recipients = plan.users.flatMap((userId) => Array.from({ length: plan.perUser ?? 1 }, () => userId));
  const inputs = recipients.map((userId, i) => ({
    ...(plan.producerIds ? { id: `${RUN}_ntf_${plan.name.replace(/\W+/g, '_')}_${i}` } : {}),
    type: plan.type,
    recipients: [userId],
    data: plan.type === INAPP_TYPE ? INAPP_DATA : plan.type === DIGEST_TYPE ? DIGEST_DATA : DATA,
    ...(plan.channels ? { channels: plan.channels } : {}),
  }));
  const accepted: AcceptedBody[] = [];
  if (plan.batch) {
    for (let i = 0; i < inputs.length; i += PER_REQUEST) {
      meter.counts.fetchRequests += 1;
      const res = await api(
        'POST',
        '/v1/notifications/batch',
        { notifications: inputs.slice(i, i + PER_REQUEST) },
        { env },
      );
      expect(res.status).toBe(202);
      accepted.push(...(await json<{ results: AcceptedBody[] }>(res)).results);
    }
  } else {
    for (const input of inputs) {
      meter.counts.fetchRequests += 1;
      const res = await api('POST', '/v1/notifications', input, { env });
      expect(res.status).toBe(202);
      accepted.push(await json<AcceptedBody>(res));
    }
  }
  if (plan.producerIds) expect(accepted.map((a) => a.id)).toEqual(inputs.map((i) => i.id));
  return accepted;
}

/**
 * Drains the capturing queues through queue() in batches of 100 messages, as the platform would,
 * re-running what the consumer re-sent or retried (at most 3 rounds; delays are not waited for).
 */
async function drain(env: Env, meter: Meter, queues: ReturnType<typeof freshEnv>['queues']) {
  let unconsumed = 0;
  for (let round = 0; round < 3; round += 1) {
    let any = false;
    for (const channel of CHANNELS) {
      const pending: QueueMessage[] = queues[channel].sent.splice(0).map((m) => m.body);
      for (let i = 0; i < pending.length; i += CONSUMER_BATCH) {
        any = true;
        const bodies = pending.slice(i, i + CONSUMER_BATCH);
        meter.counts.queueInvocations += 1;
        meter.counts.queueMessagesRead += bodies.length;
        const { result, messageIds } = await runConsumer(env, `herald-${channel}`, bodies);
        const retried = new Set(result.retryMessages.map((m) => m.msgId));
        if (result.retryBatch.retry) for (const id of messageIds) retried.add(id);
        meter.counts.queueRetries += retried.size;
        meter.counts.queueAcks += messageIds.length - retried.size;
        // A retried message comes back to the same queue: read again (and billed again).
        messageIds.forEach((id, index) => {
          const body = bodies[index];
          if (retried.has(id) && body) queues[channel].sent.push({ body });
        });
      }
    }
    if (!any) break;
  }
  for (const channel of CHANNELS) unconsumed += queues[channel].sent.length;
  return unconsumed;
}

/** Final statuses of the scenario's deliveries, and which provider sent them. */
async function outcomesOf(accepted: AcceptedBody[]) {
  const ids = accepted.flatMap((a) => a.deliveries.map((d) => d.id));
  const deliveries = await createServices(testEnv).deliveries.getDeliveries(ids);
  const statuses: Record<string, number> = {};
  const providers: Record<string, number> = {};
  for (const d of deliveries) {
    statuses[d.status] = (statuses[d.status] ?? 0) + 1;
    const provider = d.provider ?? 'none';
    providers[provider] = (providers[provider] ?? 0) + 1;
  }
  return { statuses, providers };
}

/** The database's size in bytes, as D1 reports it after a statement (pages of 4 KB). */
/** The size of every database (home and shards) together. */
async function databaseBytes(): Promise<number> {
  const databases = Object.entries(testEnv)
    .filter(([name]) => /^DB(_\d+)?$/.test(name))
    .map(([, db]) => db as D1Database);
  const sizes = await Promise.all(
    databases.map(async (db) => (await db.prepare('SELECT 1').run()).meta.size_after),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

async function runScenario(plan: ScenarioPlan): Promise<ScenarioResult> {
  const { env, meter, queues, dlqs, topics, topicsDlq } = freshEnv();
  takeRecipientStorage();
  const stopFetch = meterFetch(meter, providers.network);
  try {
    const subscribed = plan.topic ? await subscribeTopic(env, meter, plan) : undefined;
    const started = Date.now();
    const sizeBefore = await databaseBytes();
    let accepted: AcceptedBody[];
    let topic: TopicFigures | undefined;
    let unexpanded = 0;
    if (subscribed) {
      // Accepting a topic send is the request and the expansion: every subscriber's row is written
      // by a page of the topics queue, which also hands it to its channel queue.
      const id = await sendToTopic(env, meter, plan, subscribed.topic);
      const expansion = await expandTopics(env, meter, topics);
      unexpanded = expansion.unconsumed;
      const ids = await deliveryIdsOf(id);
      expect(ids.length, 'one delivery per subscriber').toBe(plan.users.length);
      accepted = [{ id, deliveries: ids.map((d) => ({ id: d, channel: 'email', status: 'queued' })) }];
      topic = {
        subscribers: plan.users.length,
        pages: expansion.pages,
        invocations: expansion.invocations,
        pageMessages: meter.counts.queueWrittenByBinding.QUEUE_TOPICS ?? 0,
        subscribe: subscribed.counts,
      };
    } else {
      accepted = await ingest(env, meter, plan);
    }
    const ingestCounts = meter.snapshot();
    const sizeAfterIngest = await databaseBytes();
    const messages = CHANNELS.reduce((s, c) => s + queues[c].sent.length, 0) + (topic?.pageMessages ?? 0);
    meter.reset();
    const unconsumed = (await drain(env, meter, queues)) + unexpanded;
    const consumeCounts = meter.snapshot();
    const wallMs = Date.now() - started;
    const sizeAfterDelivery = await databaseBytes();
    const { statuses, providers: byProvider } = await outcomesOf(accepted);
    return {
      name: plan.name,
      batch: plan.batch,
      producerIds: plan.producerIds,
      channels: plan.channels ?? null,
      notifications: plan.topic ? 1 : plan.count,
      deliveries: accepted.reduce((s, a) => s + a.deliveries.length, 0),
      // An in-app item is delivered as it is sent (appended to the inbox).
      sent: (statuses.sent ?? 0) + (statuses.delivered ?? 0),
      statuses,
      providers: byProvider,
      messages,
      unconsumed,
      deadLettered: CHANNELS.reduce((s, c) => s + dlqs[c].sent.length, 0) + topicsDlq.sent.length,
      wallMs,
      ingest: ingestCounts,
      consume: consumeCounts,
      total: addCounts(ingestCounts, consumeCounts),
      storage: takeRecipientStorage(),
      databaseGrowth: { ingest: sizeAfterIngest - sizeBefore, delivery: sizeAfterDelivery - sizeAfterIngest },
      ...(topic ? { topic } : {}),
    };
  } finally {
    stopFetch();
  }
}

async function meterCronTick(): Promise<Counts> {
  const { env, meter } = freshEnv();
  const stopFetch = meterFetch(meter, providers.network);
  try {
    const ctx = createExecutionContext();
    meter.counts.cronInvocations += 1;
    await worker.scheduled(
      createScheduledController({ scheduledTime: Date.now(), cron: '* * * * *' }),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return meter.snapshot();
  } finally {
    stopFetch();
  }
}

/**
 * Retention over everything the scenarios wrote (as if it had all grown older than the retention):
 * archived to R2, then removed. Returns what that cost and how many deliveries it removed.
 */
async function meterRetention(): Promise<{ counts: Counts; removed: number; objects: number }> {
  const { env, meter } = freshEnv();
  let removed = 0;
  let objects = 0;
  for (;;) {
    meter.counts.fetchRequests += 1;
    const res = await api(
      'POST',
      '/v1/admin/retention/run',
      { before: new Date(Date.now() + 1000).toISOString() },
      { env },
    );
    expect(res.status).toBe(200);
    const body = await json<{ removed: number; objects: string[]; more: boolean }>(res);
    removed += body.removed;
    objects += body.objects.length;
    if (!body.more) break;
  }
  return { counts: meter.snapshot(), removed, objects };
}

it(`meters ${N} notifications per channel and over all channels`, async ({ task }) => {
  providers = await realProviders();
  // The provider each channel is configured with: every delivery must have gone through it.
  const providerOf = Object.fromEntries(
    CHANNELS.map((channel) => [
      channel,
      providers.env[PROVIDERS_VAR[channel]] ?? (channel === 'inapp' ? 'inbox' : 'sandbox'),
    ]),
  ) as Record<Channel, string>;
  await createContacts();

  const firstIngest = Date.now();
  const scenarios: ScenarioResult[] = [];
  for (const plan of SCENARIOS) {
    await instrumentRecipients(plan.users, plan.channels?.includes('inapp') === true);
    scenarios.push(await runScenario(plan));
    // Its recipients' rows are counted: let their objects go (their storage stays).
    await evictAllDurableObjects();
  }
  const cronAfterMs = Date.now() - firstIngest;
  const cron = await meterCronTick();
  const retention = await meterRetention();

  for (const [index, s] of scenarios.entries()) {
    // Every delivery must have been sent (or folded into one that was), or the figures would be flattered.
    const perUser = SCENARIOS[index]?.perUser ?? 1;
    const carried = s.deliveries / perUser;
    expect(s.sent, `${s.name}: ${JSON.stringify(s.statuses)}`).toBe(carried);
    expect(s.statuses.digested ?? 0, s.name).toBe(s.deliveries - carried);
    const channels = SCENARIOS[index]?.channels ?? TYPE_CHANNELS;
    const expected = Object.fromEntries(channels.map((c) => [providerOf[c], carried / channels.length]));
    expect(s.providers, s.name).toEqual(
      carried < s.deliveries ? { ...expected, none: s.deliveries - carried } : expected,
    );
  }

  const report: MeterReport = {
    notificationsPerScenario: N,
    perRequest: PER_REQUEST,
    consumerBatch: CONSUMER_BATCH,
    topicBatch: TOPIC_BATCH,
    contacts: users.length,
    scenarios,
    cron,
    cronAfterMs,
    retention,
    providers: providerOf,
  };
  const markdown = renderReport(report);
  console.log(markdown);
  // The meter config's reporter (in Node) writes this into bench/results.md.
  (task.meta as Record<string, unknown>).heraldMeter = { markdown, report };
});
