import {
  createExecutionContext,
  createScheduledController,
  runInDurableObject,
  waitOnExecutionContext,
} from 'cloudflare:test';
import { expect, it } from 'vitest';
import { CHANNELS, type Channel } from '../../src/domain/channels';
import type { Env } from '../../src/env';
import worker from '../../src/index';
import type { QueueMessage } from '../../src/queue/messages';
import { createServices } from '../../src/services/context';
import { recipientKey } from '../../src/services/politeness';
import { api, FCM_TOKEN, json, SLACK_URL, testEnv } from '../../test/helpers/api';
import { envWithCapturedQueues, runConsumer } from '../../test/helpers/queues';
import type { DurableObjectStorageCounts } from './costs';
import { addCounts, type Counts, Meter, meterEnv, meterFetch } from './metered-env';
import { type MeterReport, renderReport, type ScenarioResult } from './report';

/**
 * The operation meter: runs real traffic through the Worker's fetch() and queue() handlers inside
 * workerd, with every binding wrapped in a counting proxy, and prices what one delivery costs.
 * Run with `npx vitest run -c bench/meter/vitest.meter.config.ts` (not part of `npm test`).
 */

const meterEnvVars = testEnv as unknown as { METER_NOTIFICATIONS?: string };
const N = Number(meterEnvVars.METER_NOTIFICATIONS ?? 1000);
const PER_REQUEST = 100;
const CONSUMER_BATCH = 100;
const SINGLE_N = Math.max(10, Math.round(N / 10));
const TYPE = 'order_shipped';
const DATA = { order_id: 'A-1001', carrier: 'DHL', eta: 'Tuesday' };

interface AcceptedBody {
  id: string;
  deliveries: { id: string; channel: Channel; status: string }[];
}

/** Contacts with every address, one Recipient object each (created and instrumented up front). */
const users = Array.from({ length: N }, (_, i) => `meter_${Date.now().toString(36)}_${i}`);

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
            { platform: 'webhook', url: 'https://hooks.example.com/herald' },
          ],
        });
        expect(res.status).toBe(200);
      }),
    );
  }
}

/**
 * Wakes each recipient's object (its constructor creates the schema, as in steady state) and
 * wraps its `sql.exec` and `setAlarm`, so rows written are measured where SQLite counts them.
 */
async function instrumentRecipients(): Promise<void> {
  for (const userId of users) {
    const key = await recipientKey(userId, { channel: 'email', email: `${userId}@example.com` });
    const stub = testEnv.RECIPIENT.get(testEnv.RECIPIENT.idFromName(key));
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

/** A fresh metered env: new binding objects, so the per-isolate caches start cold, as in a new isolate. */
function freshEnv() {
  const captured = envWithCapturedQueues();
  const meter = new Meter();
  return { env: meterEnv(captured.env, meter), meter, queues: captured.queues, dlqs: captured.dlqs };
}

async function ingest(
  env: Env,
  meter: Meter,
  channels: Channel[] | undefined,
  count: number,
  batch: boolean,
) {
  const inputs = users.slice(0, count).map((userId) => ({
    type: TYPE,
    recipients: [userId],
    data: DATA,
    ...(channels ? { channels } : {}),
  }));
  const accepted: AcceptedBody[] = [];
  if (batch) {
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

async function statusesOf(accepted: AcceptedBody[]): Promise<Record<string, number>> {
  const ids = accepted.flatMap((a) => a.deliveries.map((d) => d.id));
  const deliveries = await createServices(testEnv).deliveries.getDeliveries(ids);
  const out: Record<string, number> = {};
  for (const d of deliveries) out[d.status] = (out[d.status] ?? 0) + 1;
  return out;
}

/** The database's size in bytes, as D1 reports it after a statement (pages of 4 KB). */
async function databaseBytes(): Promise<number> {
  const { meta } = await testEnv.DB.prepare('SELECT 1').run();
  return meta.size_after;
}

async function runScenario(
  name: string,
  channels: Channel[] | undefined,
  count: number,
  batch: boolean,
): Promise<ScenarioResult> {
  const { env, meter, queues, dlqs } = freshEnv();
  takeRecipientStorage();
  const stopFetch = meterFetch(meter);
  try {
    const sizeBefore = await databaseBytes();
    const accepted = await ingest(env, meter, channels, count, batch);
    const ingestCounts = meter.snapshot();
    const sizeAfterIngest = await databaseBytes();
    const messages = CHANNELS.reduce((s, c) => s + queues[c].sent.length, 0);
    meter.reset();
    const unconsumed = await drain(env, meter, queues);
    const consumeCounts = meter.snapshot();
    const sizeAfterDelivery = await databaseBytes();
    const statuses = await statusesOf(accepted);
    return {
      name,
      notifications: count,
      deliveries: accepted.reduce((s, a) => s + a.deliveries.length, 0),
      sent: statuses.sent ?? 0,
      statuses,
      messages,
      unconsumed,
      deadLettered: CHANNELS.reduce((s, c) => s + dlqs[c].sent.length, 0),
      ingest: ingestCounts,
      consume: consumeCounts,
      total: addCounts(ingestCounts, consumeCounts),
      storage: takeRecipientStorage(),
      databaseGrowth: { ingest: sizeAfterIngest - sizeBefore, delivery: sizeAfterDelivery - sizeAfterIngest },
    };
  } finally {
    stopFetch();
  }
}

async function meterCronTick(): Promise<Counts> {
  const { env, meter } = freshEnv();
  const stopFetch = meterFetch(meter);
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

it(`meters ${N} notifications per channel and over all channels`, async ({ task }) => {
  await createContacts();
  await instrumentRecipients();

  const scenarios: ScenarioResult[] = [];
  for (const channel of CHANNELS) {
    scenarios.push(await runScenario(`${channel}, batch ingest`, [channel], N, true));
  }
  scenarios.push(await runScenario('all channels, batch ingest', undefined, N, true));
  scenarios.push(await runScenario('all channels, single ingest', undefined, SINGLE_N, false));
  const cron = await meterCronTick();

  for (const s of scenarios) {
    // Every delivery must have been sent, or the per-delivery figures would be flattered.
    expect(s.sent, `${s.name}: ${JSON.stringify(s.statuses)}`).toBe(s.deliveries);
  }

  const report: MeterReport = {
    notificationsPerScenario: N,
    perRequest: PER_REQUEST,
    consumerBatch: CONSUMER_BATCH,
    scenarios,
    cron,
  };
  const markdown = renderReport(report);
  console.log(markdown);
  // The meter config's reporter (in Node) writes this into bench/results.md.
  (task.meta as Record<string, unknown>).heraldMeter = { markdown, report };
});
