import type { Env } from '../config/env';
import { type Channel, isChannel } from '../domain/channels';
import { groupBy } from '../lib/collections';
import { log } from '../lib/log';
import { type QueueMessage, queueMessageSchema } from '../queue/messages';
import { type Dispatch, sendToQueue } from '../queue/producer';
import { createServices, type Services } from '../services/container';
import { type Decision, deliverBatch } from '../services/delivery/deliver-batch';
import { recordDeadLetters } from '../services/operations/dead-letters';

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
  const route = parseQueueName(batch.queue);
  if (!route) {
    log('error', 'queue.unknown', { queue: batch.queue, count: batch.messages.length });
    for (const message of batch.messages) message.retry({ delaySeconds: BATCH_FAILURE_RETRY_SECONDS });
    return;
  }
  const services = createServices(env, { consumer: true });
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
    await settle(valid, () =>
      recordDeadLetters(
        services,
        route.channel,
        valid.map((v) => v.body),
      ),
    );
    return;
  }

  const handedAt = new Map<string, number>();
  for (const { body } of valid) {
    // Only ingest's messages carry `at`; ids the sweeper or a replay sends have rows already.
    if (body.at !== undefined) for (const id of body.deliveryIds) handedAt.set(id, body.at);
  }
  let decisions: Map<string, Decision>;
  try {
    decisions = await deliverBatch(
      services,
      route.channel,
      valid.flatMap((v) => v.body.deliveryIds),
      { handedAt },
    );
  } catch (error) {
    log('error', 'queue.batch_failed', { queue: batch.queue, count: valid.length, error: String(error) });
    for (const { message } of valid) message.retry({ delaySeconds: BATCH_FAILURE_RETRY_SECONDS });
    return;
  }
  for (const item of valid) await settleMessage(services, route.channel, item, decisions);
}

async function settle(items: { message: Message<unknown> }[], work: () => Promise<void>): Promise<void> {
  try {
    await work();
    for (const { message } of items) message.ack();
  } catch (error) {
    log('error', 'queue.dead_letter_failed', { count: items.length, error: String(error) });
    for (const { message } of items) message.retry({ delaySeconds: BATCH_FAILURE_RETRY_SECONDS });
  }
}

/**
 * Acks a message whose deliveries are all done. When every delivery of a message waits for the
 * same retry the message itself is retried; otherwise only the unfinished deliveries are sent on
 * in new messages, so a partial failure never resends what already went out.
 */
async function settleMessage(
  services: Services,
  channel: Channel,
  { message, body }: { message: Message<unknown>; body: QueueMessage },
  decisions: Map<string, Decision>,
): Promise<void> {
  const of = (kind: Decision['kind']) =>
    body.deliveryIds.flatMap((id) => {
      const decision = decisions.get(id) ?? { kind: 'done' };
      return decision.kind === kind
        ? [{ id, delay: 'delaySeconds' in decision ? decision.delaySeconds : 0 }]
        : [];
    });
  const byDelay = (list: { id: string; delay: number }[]) =>
    new Map([...groupBy(list, (e) => e.delay)].map(([delay, es]) => [delay, es.map((e) => e.id)]));
  const retries = byDelay(of('retry'));
  const waits = byDelay(of('wait'));
  const deadIds = of('dead').map((e) => e.id);
  const retryIds = [...retries.values()].flat();
  if (
    deadIds.length === 0 &&
    waits.size === 0 &&
    retryIds.length === body.deliveryIds.length &&
    retries.size === 1
  ) {
    message.retry({ delaySeconds: [...retries.keys()][0] });
    return;
  }
  // Waiting (scheduled or deferred) is not a failed attempt: it travels in a new message, so the
  // queue's retry limit only ever counts real failures.
  const at = body.at !== undefined ? { at: body.at } : {};
  const dispatches: Dispatch[] = [
    ...[...retries].map(([delaySeconds, deliveryIds]) => ({
      deliveryIds,
      delaySeconds,
      attempt: body.attempt + 1,
      ...at,
    })),
    ...[...waits].map(([delaySeconds, deliveryIds]) => ({
      deliveryIds,
      delaySeconds,
      attempt: body.attempt,
      ...at,
    })),
  ];
  const onward = await sendToQueue(services.env, channel, dispatches, 'consumer');
  const dead =
    onward.unsent.length === 0 && deadIds.length > 0
      ? await sendToQueue(
          services.env,
          channel,
          [{ deliveryIds: deadIds, attempt: body.attempt + 1 }],
          'consumer',
          {
            deadLetter: true,
          },
        )
      : { unsent: [] };
  if (onward.unsent.length > 0 || dead.unsent.length > 0) {
    message.retry({ delaySeconds: BATCH_FAILURE_RETRY_SECONDS });
    return;
  }
  message.ack();
}
