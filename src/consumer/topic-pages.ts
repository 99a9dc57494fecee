import type { Env } from '../config/env';
import { scaledDelaySeconds } from '../domain/retry';
import { log } from '../lib/log';
import { type TopicPageMessage, topicPageMessageSchema } from '../queue/messages';
import { sendTopicPages } from '../queue/producer';
import { createServices } from '../services/container';
import { expandPage } from '../services/ingest/topic-expansion';
import { deadLetterRetryDelaySeconds } from '../services/operations/dead-letter-retry';

/** Delay before a page that failed is tried again. */
const PAGE_RETRY_SECONDS = 30;
/** Delay before a page back from the dead-letter queue is tried again. */
const REVIVED_PAGE_DELAY_SECONDS = 300;

/** `herald-topics`, `herald-topics-staging`, `herald-topics-dlq` ... → whether it is the dead-letter queue. */
export function parseTopicQueueName(queue: string): { deadLetter: boolean } | null {
  return /^herald-topics(?:-[a-z0-9-]+)?$/.test(queue) ? { deadLetter: queue.endsWith('-dlq') } : null;
}

function parsed(batch: MessageBatch<unknown>): { message: Message<unknown>; body: TopicPageMessage }[] {
  return batch.messages.flatMap((message) => {
    const body = topicPageMessageSchema.safeParse(message.body);
    if (body.success) return [{ message, body: body.data }];
    log('error', 'queue.poison_message', { queue: batch.queue, messageId: message.id });
    message.ack();
    return [];
  });
}

/**
 * The topics queue: each message is one page of an expansion, done on its own (one page failing
 * leaves the others), acked when done, retried otherwise. Its dead-letter queue hands a spent page
 * back with a delay, since it is the only copy of the rest of its expansion; retried while the
 * queue refuses.
 */
export async function handleTopicPages(
  batch: MessageBatch<unknown>,
  env: Env,
  deadLetter: boolean,
): Promise<void> {
  const services = createServices(env, { consumer: true });
  await services.router.refresh(services.now());
  for (const { message, body } of parsed(batch)) {
    try {
      if (deadLetter) {
        await sendTopicPages(env, [body], { delaySeconds: REVIVED_PAGE_DELAY_SECONDS });
        log('warn', 'topics.page_revived', { notificationId: body.notificationId, database: body.database });
      } else {
        await expandPage(services, body);
      }
      message.ack();
    } catch (error) {
      log('error', deadLetter ? 'topics.page_revive_failed' : 'topics.page_failed', {
        notificationId: body.notificationId,
        database: body.database,
        attempts: message.attempts,
        error: String(error),
      });
      message.retry({
        delaySeconds: deadLetter
          ? deadLetterRetryDelaySeconds(message.attempts)
          : scaledDelaySeconds(PAGE_RETRY_SECONDS, Number(env.RETRY_DELAY_SCALE ?? 1)),
      });
    }
  }
}
