import type { Env } from '../config/env';
import { type Channel, isChannel } from '../domain/channels';
import { scaledDelaySeconds } from '../domain/retry';
import { log } from '../lib/log';
import { type CarriedOutcome, type QueueMessage, queueMessageSchema } from '../queue/messages';
import { createServices, type Services } from '../services/container';
import { type Decision, deliverBatch } from '../services/delivery/deliver-batch';
import type { BatchInput } from '../services/delivery/load';
import { describeError, raiseAlert } from '../services/operations/alerts';
import { deadLetterRetryDelaySeconds } from '../services/operations/dead-letter-retry';
import { recordDeadLetters } from '../services/operations/dead-letters';
import { settleMessage } from './settle-message';
import { handleTopicPages, parseTopicQueueName } from './topic-pages';

/** Delay before a batch that failed as a whole (D1 unavailable, say) is tried again. */
const BATCH_FAILURE_RETRY_SECONDS = 30;

/** `herald-email`, `herald-email-staging`, `herald-email-dlq` ... → channel and whether it is a DLQ. */
export function parseQueueName(queue: string): { channel: Channel; deadLetter: boolean } | null {
  const match = /^herald-([a-z]+)(?:-[a-z0-9-]+)?$/.exec(queue);
  const channel = match?.[1];
  if (!channel || !isChannel(channel)) return null;
  return { channel, deadLetter: queue.endsWith('-dlq') };
}

/**
 * The one `queue()` handler: routes by queue name, and acks or retries every message
 * explicitly. Nothing is acked in a catch: a batch that fails as a whole is retried.
 */
export async function handleQueueBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const topics = parseTopicQueueName(batch.queue);
  if (topics) return handleTopicPages(batch, env, topics.deadLetter);
  const route = parseQueueName(batch.queue);
  if (!route) {
    log('error', 'queue.unknown', { queue: batch.queue, count: batch.messages.length });
    for (const message of batch.messages) message.retry({ delaySeconds: BATCH_FAILURE_RETRY_SECONDS });
    return;
  }
  const services = createServices(env, { consumer: true });
  await services.router.refresh(services.now());
  const valid: { message: Message<unknown>; body: QueueMessage }[] = [];
  for (const message of batch.messages) {
    const parsed = queueMessageSchema.safeParse(message.body);
    if (parsed.success) {
      valid.push({ message, body: parsed.data });
    } else {
      // A body no version of Herald can read will never succeed: drop it loudly.
      log('error', 'queue.poison_message', { queue: batch.queue, messageId: message.id });
      message.ack();
    }
  }
  if (valid.length === 0) return;

  if (route.deadLetter) {
    await settle(services, route.channel, valid, () =>
      recordDeadLetters(
        services,
        route.channel,
        valid.map((v) => v.body),
      ),
    );
    return;
  }

  let decisions: Map<string, Decision>;
  try {
    decisions = await deliverBatch(
      services,
      route.channel,
      valid.flatMap((v) => v.body.deliveryIds),
      batchInput(valid.map((v) => v.body)),
    );
  } catch (error) {
    log('error', 'queue.batch_failed', { queue: batch.queue, count: valid.length, error: String(error) });
    const delaySeconds = scaledDelaySeconds(BATCH_FAILURE_RETRY_SECONDS, Number(env.RETRY_DELAY_SCALE ?? 1));
    for (const { message } of valid) message.retry({ delaySeconds });
    return;
  }
  const settled = new Set<string>();
  for (const item of valid) await settleMessage(services, route.channel, item, decisions, settled);
}

/** What the batch's messages say besides their ids: hand-over times, pins, travelling answers. */
function batchInput(bodies: readonly QueueMessage[]): BatchInput {
  const handedAt = new Map<string, number>();
  const pins = new Map<string, string>();
  const carried = new Map<string, CarriedOutcome>();
  const digests = new Map<string, string[]>();
  for (const body of bodies) {
    for (const [id, items] of Object.entries(body.digests ?? {})) digests.set(id, items);
    // Only ingest's messages carry `at`; ids the sweeper or a replay sends have rows already.
    if (body.at !== undefined) for (const id of body.deliveryIds) handedAt.set(id, body.at);
    for (const [id, pin] of Object.entries(body.pins ?? {})) pins.set(id, pin);
    for (const [id, outcome] of Object.entries(body.outcomes ?? {})) carried.set(id, outcome);
  }
  return { handedAt, pins, carried, digests };
}

/**
 * Acks a dead-letter batch once it is recorded. A batch that could not be recorded (D1 down) is
 * the last copy of its ids: each message is retried with a delay that grows with its deliveries
 * (`deadLetterRetryDelaySeconds`: about two days over the queue's 100 retries), never acked, and
 * an alert is raised (straight to the webhook when D1 cannot store it).
 */
async function settle(
  services: Services,
  channel: Channel,
  items: { message: Message<unknown> }[],
  work: () => Promise<void>,
): Promise<void> {
  try {
    await work();
  } catch (error) {
    log('error', 'queue.dead_letter_failed', { channel, count: items.length, error: String(error) });
    for (const { message } of items)
      message.retry({ delaySeconds: deadLetterRetryDelaySeconds(message.attempts) });
    await raiseAlert(
      services,
      `dead-letters:unrecorded:${channel}`,
      `${items.length} ${channel} dead-letter messages could not be recorded and are retried: ${describeError(error)}`,
    );
    return;
  }
  for (const { message } of items) message.ack();
}
