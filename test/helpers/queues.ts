import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
} from 'cloudflare:test';
import type { z } from '@hono/zod-openapi';
import { expect, vi } from 'vitest';
import type { AcceptedSchema } from '../../src/api/shared/schemas';
import type { Env } from '../../src/config/env';
import { CHANNELS, type Channel } from '../../src/domain/channels';
import worker from '../../src/index';
import type { QueueMessage } from '../../src/queue/messages';
import { api, json, testEnv } from './api';

/** A queue binding that records what is sent to it instead of delivering it. */
export class CapturingQueue {
  readonly sent: { body: QueueMessage; delaySeconds?: number }[] = [];
  fail = false;

  async send(body: QueueMessage, options?: QueueSendOptions): Promise<void> {
    if (this.fail) throw new Error('queue unavailable');
    this.sent.push({ body, ...(options?.delaySeconds ? { delaySeconds: options.delaySeconds } : {}) });
  }

  async sendBatch(messages: Iterable<MessageSendRequest<QueueMessage>>): Promise<void> {
    if (this.fail) throw new Error('queue unavailable');
    for (const m of messages)
      this.sent.push({ body: m.body, ...(m.delaySeconds ? { delaySeconds: m.delaySeconds } : {}) });
  }

  ids(): string[] {
    return this.sent.flatMap((m) => m.body.deliveryIds);
  }
}

export interface CapturedEnv {
  env: Env;
  queues: Record<Channel, CapturingQueue>;
  dlqs: Record<Channel, CapturingQueue>;
  /** The topics queue (pages of topic expansions; their bodies are TopicPageMessage) and its DLQ. */
  topics: CapturingQueue;
  topicsDlq: CapturingQueue;
}

/** The test env with every queue replaced by a capturing one, so no background consumer runs. */
export function envWithCapturedQueues(overrides: Record<string, unknown> = {}): CapturedEnv {
  const make = () => ({
    email: new CapturingQueue(),
    sms: new CapturingQueue(),
    push: new CapturingQueue(),
    chat: new CapturingQueue(),
    webhook: new CapturingQueue(),
    inapp: new CapturingQueue(),
  });
  const queues = make();
  const dlqs = make();
  const topics = new CapturingQueue();
  const topicsDlq = new CapturingQueue();
  const env = {
    ...testEnv,
    QUEUE_EMAIL: queues.email,
    QUEUE_SMS: queues.sms,
    QUEUE_PUSH: queues.push,
    QUEUE_CHAT: queues.chat,
    QUEUE_WEBHOOK: queues.webhook,
    QUEUE_INAPP: queues.inapp,
    DLQ_EMAIL: dlqs.email,
    DLQ_SMS: dlqs.sms,
    DLQ_PUSH: dlqs.push,
    DLQ_CHAT: dlqs.chat,
    DLQ_WEBHOOK: dlqs.webhook,
    DLQ_INAPP: dlqs.inapp,
    QUEUE_TOPICS: topics,
    DLQ_TOPICS: topicsDlq,
    ...overrides,
  } as unknown as Env;
  return { env, queues, dlqs, topics, topicsDlq };
}

let sequence = 0;

/**
 * Runs the Worker's queue() handler on these bodies and returns what it acked and retried, with
 * the message ids in the order of the bodies, and the delay each retry asked for (`retryDelays`).
 * `attempts` is the queue's delivery count: one for every message, or one per message.
 */
export async function runConsumer(
  env: Env,
  queue: string,
  bodies: QueueMessage[],
  attempts: number | readonly number[] = 1,
) {
  const messages = bodies.map((body, i) => {
    sequence += 1;
    const count = typeof attempts === 'number' ? attempts : (attempts[i] ?? 1);
    return { id: `msg-${sequence}`, timestamp: new Date(), attempts: count, body };
  });
  const batch = createMessageBatch<QueueMessage>(queue, messages);
  // What each retry asked for (`getQueueResult` does not say): the delay by message id.
  const retryDelays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    Object.defineProperty(message, 'retry', {
      value: (options?: QueueRetryOptions) => {
        retryDelays.set(message.id, options?.delaySeconds);
        retry(options);
      },
    });
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  const result = await getQueueResult(batch, ctx);
  return { result, messageIds: messages.map((m) => m.id), retryDelays };
}

/** Captured queues and real email providers: Resend first, SendGrid as its failover. */
export const resendSendgridEnv = (extra: Record<string, unknown> = {}) =>
  envWithCapturedQueues({
    EMAIL_PROVIDERS: 'resend,sendgrid',
    RESEND_API_KEY: 're_test_key',
    SENDGRID_API_KEY: 'SG.test_key',
    EMAIL_FROM: 'Herald <noreply@example.com>',
    ...extra,
  });

/** What POST /v1/notifications answers: the notification id and its deliveries as planned. */
export type Accepted = z.infer<typeof AcceptedSchema>;

/** Sends a notification with the captured env; fails the test unless it is accepted (202). */
export async function sendNotification(
  captured: CapturedEnv,
  body: Record<string, unknown>,
): Promise<Accepted> {
  const res = await api('POST', '/v1/notifications', body, { env: captured.env });
  expect(res.status, await res.clone().text()).toBe(202);
  return json<Accepted>(res);
}

/**
 * The body of a message captured on a channel's queue: the first by default, the last with -1.
 * Fails the test when there is none.
 */
export function enqueued(captured: CapturedEnv, channel: Channel, index = 0): QueueMessage {
  const body = captured.queues[channel].sent.at(index)?.body;
  if (!body) throw new Error(`nothing enqueued on ${channel} at ${index}`);
  return body;
}

/** Runs the channel's consumer on one captured message (see `enqueued`), as delivery `attempts`. */
export function consumeEnqueued(
  captured: CapturedEnv,
  channel: Channel,
  { index = 0, attempts = 1 }: { index?: number; attempts?: number } = {},
) {
  return runConsumer(captured.env, `herald-${channel}`, [enqueued(captured, channel, index)], attempts);
}

/**
 * Takes every message captured so far off a channel's queue and runs its consumer on them as one
 * batch; fails the test when there is none. What the consumer enqueues in turn stays on the queue.
 */
export async function drainQueue(captured: CapturedEnv, channel: Channel) {
  const bodies = captured.queues[channel].sent.splice(0).map((m) => m.body);
  if (bodies.length === 0) throw new Error(`nothing enqueued on ${channel}`);
  return { bodies, ...(await runConsumer(captured.env, `herald-${channel}`, bodies)) };
}

/** `drainQueue` for every channel whose queue holds messages. */
export async function drainQueues(captured: CapturedEnv) {
  for (const channel of CHANNELS) {
    if (captured.queues[channel].sent.length > 0) await drainQueue(captured, channel);
  }
}

/** Runs a channel's dead-letter consumer on these deliveries, as the queue does after the last attempt. */
export function deadLetter(env: Env, channel: Channel, deliveryIds: string[], attempt = 8) {
  return runConsumer(env, `herald-${channel}-dlq`, [{ v: 1, deliveryIds, attempt }]);
}

/** Runs the Worker's scheduled() handler as the minute cron fired at `at` (minute 0: the hourly wide run). */
export async function runCron(env: Env, at = Date.now()): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: '* * * * *' }), env, ctx);
}

let laterCron = 0;
/**
 * A cron time no other run of the tests uses: a whole minute years ahead, at minute 0 of its hour
 * (the hourly wide run) when `wide`, otherwise minute 30. Rows written around it are the only ones
 * the sweeper and the reaper see there.
 */
export function unusedCronTime(wide = false): number {
  laterCron += 1;
  const hour = 3600_000;
  const base =
    Math.floor(Date.now() / hour) * hour + (1000 + Math.floor(Math.random() * 100_000)) * 24 * hour;
  return base + laterCron * 30 * 24 * hour + (wide ? 0 : 30 * 60_000);
}

/** Runs `work` with the clock (Date only: timers, D1 and queues run as usual) at `ms`. */
export async function atTime<T>(ms: number, work: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ now: ms, toFake: ['Date'] });
  try {
    return await work();
  } finally {
    vi.useRealTimers();
  }
}
