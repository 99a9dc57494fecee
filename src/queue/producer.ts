import type { Channel } from '../domain/channels';
import { chunk } from '../lib/collections';
import { log } from '../lib/log';
import {
  type CarriedOutcome,
  MAX_IDS_PER_MESSAGE,
  type QueueMessage,
  type TopicPageMessage,
} from './messages';

/** The queue bindings: one queue per channel and its dead-letter queue (see wrangler.toml). */
export type ChannelQueues = {
  QUEUE_EMAIL: Queue<QueueMessage>;
  QUEUE_SMS: Queue<QueueMessage>;
  QUEUE_PUSH: Queue<QueueMessage>;
  QUEUE_CHAT: Queue<QueueMessage>;
  QUEUE_WEBHOOK: Queue<QueueMessage>;
  QUEUE_INAPP: Queue<QueueMessage>;
  DLQ_EMAIL: Queue<QueueMessage>;
  DLQ_SMS: Queue<QueueMessage>;
  DLQ_PUSH: Queue<QueueMessage>;
  DLQ_CHAT: Queue<QueueMessage>;
  DLQ_WEBHOOK: Queue<QueueMessage>;
  DLQ_INAPP: Queue<QueueMessage>;
};

/** Most messages one `sendBatch` call takes (the Queues limit). */
const MAX_MESSAGES_PER_SEND = 100;

/** Ids to send together: they share an attempt count, a delay and (from ingest) a hand-over time. */
export interface Dispatch {
  deliveryIds: readonly string[];
  /** Herald's attempt counter carried by the message. */
  attempt: number;
  delaySeconds?: number;
  /** When ingest handed the ids over (epoch ms); carried on by every re-send of them. */
  at?: number;
  /** The provider each of some ids must be retried on (after an unknown outcome). */
  pins?: ReadonlyMap<string, string>;
  /** Digest carriers: the ids folded into each. */
  digests?: ReadonlyMap<string, string[]>;
  /** Outcomes D1 could not take yet, travelling with their ids. */
  outcomes?: ReadonlyMap<string, CarriedOutcome>;
}

/** Who is sending, for the log line of a failed send. */
export type Sender = 'ingest' | 'sweeper' | 'reaper' | 'consumer' | 'replay' | 'escalation';

/** What a send did: the ids the queue took, and the ids it refused. */
export interface Sent {
  sent: string[];
  unsent: string[];
}

function queueOf(queues: ChannelQueues, channel: Channel, deadLetter: boolean): Queue<QueueMessage> {
  switch (channel) {
    case 'email':
      return deadLetter ? queues.DLQ_EMAIL : queues.QUEUE_EMAIL;
    case 'sms':
      return deadLetter ? queues.DLQ_SMS : queues.QUEUE_SMS;
    case 'push':
      return deadLetter ? queues.DLQ_PUSH : queues.QUEUE_PUSH;
    case 'chat':
      return deadLetter ? queues.DLQ_CHAT : queues.QUEUE_CHAT;
    case 'webhook':
      return deadLetter ? queues.DLQ_WEBHOOK : queues.QUEUE_WEBHOOK;
    case 'inapp':
      return deadLetter ? queues.DLQ_INAPP : queues.QUEUE_INAPP;
  }
}

/** The messages of a dispatch: ids, never personal data, at most MAX_IDS_PER_MESSAGE per message. */
export function messagesOf(dispatch: Dispatch): MessageSendRequest<QueueMessage>[] {
  return chunk([...dispatch.deliveryIds], MAX_IDS_PER_MESSAGE).map((deliveryIds) => ({
    body: {
      v: 1,
      deliveryIds,
      attempt: dispatch.attempt,
      ...(dispatch.at !== undefined ? { at: dispatch.at } : {}),
      ...entriesFor('pins', dispatch.pins, deliveryIds),
      ...entriesFor('outcomes', dispatch.outcomes, deliveryIds),
      ...entriesFor('digests', dispatch.digests, deliveryIds),
    },
    contentType: 'json',
    ...(dispatch.delaySeconds ? { delaySeconds: dispatch.delaySeconds } : {}),
  }));
}

/** The entries of `map` for the ids of one message, as a field of its body (none: no field). */
function entriesFor<K extends string, V>(
  field: K,
  map: ReadonlyMap<string, V> | undefined,
  ids: readonly string[],
): Partial<Record<K, Record<string, V>>> {
  const entries = ids.flatMap((id) => {
    const value = map?.get(id);
    return value === undefined ? [] : [[id, value] as const];
  });
  return entries.length > 0 ? ({ [field]: Object.fromEntries(entries) } as Record<K, Record<string, V>>) : {};
}

/**
 * The one place Herald sends queue messages. Sends the dispatches to a channel's queue (or its
 * dead-letter queue) in `sendBatch` calls of at most 100 messages. Never throws: a refused call is
 * logged and its ids come back as `unsent`, so each caller decides what a refusal means.
 */
export async function sendToQueue(
  queues: ChannelQueues,
  channel: Channel,
  dispatches: readonly Dispatch[],
  by: Sender,
  options: { deadLetter?: boolean } = {},
): Promise<Sent> {
  const queue = queueOf(queues, channel, options.deadLetter === true);
  const result: Sent = { sent: [], unsent: [] };
  for (const messages of chunk(dispatches.flatMap(messagesOf), MAX_MESSAGES_PER_SEND)) {
    const ids = messages.flatMap((m) => m.body.deliveryIds);
    try {
      await queue.sendBatch(messages);
      result.sent.push(...ids);
    } catch (error) {
      log('error', 'enqueue.failed', {
        channel,
        by,
        deadLetter: options.deadLetter === true,
        count: ids.length,
        error: String(error),
      });
      result.unsent.push(...ids);
    }
  }
  return result;
}

/** The topic expansion's queue and its dead-letter queue. */
export type TopicQueues = {
  QUEUE_TOPICS: Queue<TopicPageMessage>;
  DLQ_TOPICS: Queue<TopicPageMessage>;
};

/**
 * Sends pages of topic expansions (to the dead-letter queue with `deadLetter`). Throws when the
 * queue refuses: a page is the only copy of the rest of its expansion, so the caller must not
 * report success (ingest answers 5xx having written nothing; the consumer retries the page).
 */
export async function sendTopicPages(
  queues: TopicQueues,
  pages: readonly TopicPageMessage[],
  options: { deadLetter?: boolean; delaySeconds?: number } = {},
): Promise<void> {
  const queue = options.deadLetter ? queues.DLQ_TOPICS : queues.QUEUE_TOPICS;
  for (const part of chunk([...pages], MAX_MESSAGES_PER_SEND)) {
    await queue.sendBatch(
      part.map((body) => ({
        body,
        contentType: 'json' as const,
        ...(options.delaySeconds ? { delaySeconds: options.delaySeconds } : {}),
      })),
    );
  }
}
