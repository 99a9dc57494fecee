/**
 * How the dead-letter consumers retry a batch they could not record (D1 unreachable, say). The
 * messages of a dead-letter queue are the last copy of their deliveries' ids: acked, they are gone.
 * So they are retried with a growing delay across a day and more of D1 outage, never acked unread.
 *
 * The budget is set twice, and each one alone covers a day: `wrangler.toml` gives every `*-dlq`
 * consumer `max_retries = 100` and `retry_delay = 900` (100 × 15 min = 25 h, what an uncaught
 * throw gets), and the consumer's own `retry({ delaySeconds })` follows this schedule
 * (30 s, 1, 2, 4, 8, 16 min, then every 30 min: about 47 h over 100 retries), which stays inside the
 * queue's 4-day message retention. `test/node/wrangler-dlq.test.ts` checks both per environment.
 */

/** The first retry's delay. */
export const DLQ_RETRY_FIRST_SECONDS = 30;
/** The longest delay between two tries: an outage that ends is noticed within half an hour. */
export const DLQ_RETRY_MAX_SECONDS = 1800;
/** What the budget must span at least: a day of D1 outage. */
export const DLQ_RETRY_BUDGET_SECONDS = 24 * 3600;
/** The queue deletes a message this long after it was sent, whatever its retries (Queues' default). */
export const QUEUE_RETENTION_SECONDS = 4 * 24 * 3600;

/**
 * The delay before the next try of a dead-letter message the queue has delivered `attempts` times
 * (`message.attempts`: 1 on its first delivery): doubling from 30 s, capped at 30 minutes.
 */
export function deadLetterRetryDelaySeconds(attempts: number): number {
  const exponent = Math.min(Math.max(Math.floor(attempts), 1) - 1, 16);
  return Math.min(DLQ_RETRY_FIRST_SECONDS * 2 ** exponent, DLQ_RETRY_MAX_SECONDS);
}

/** How long a message is retried for when the queue allows it `maxRetries` retries. */
export function deadLetterRetrySpanSeconds(maxRetries: number): number {
  let total = 0;
  for (let attempts = 1; attempts <= maxRetries; attempts++) total += deadLetterRetryDelaySeconds(attempts);
  return total;
}
