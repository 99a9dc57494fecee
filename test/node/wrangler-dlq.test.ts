import { describe, expect, it } from 'vitest';
import { unstable_readConfig } from 'wrangler';
import {
  DLQ_RETRY_BUDGET_SECONDS,
  deadLetterRetryDelaySeconds,
  deadLetterRetrySpanSeconds,
  QUEUE_RETENTION_SECONDS,
} from '../../src/services/operations/dead-letter-retry';

/** The Queues limits a consumer's retry settings must stay inside. */
const MAX_RETRIES_LIMIT = 100;
const MAX_DELAY_SECONDS = 12 * 3600;

/** Every environment of wrangler.toml, as `wrangler deploy [--env]` reads it. */
const ENVIRONMENTS = [undefined, 'staging', 'production'] as const;

/** What these tests read of a `[[queues.consumers]]` entry. */
interface Consumer {
  queue: string;
  max_retries?: number;
  retry_delay?: number;
  dead_letter_queue?: string;
}

function consumersOf(env: (typeof ENVIRONMENTS)[number]): Consumer[] {
  const config = unstable_readConfig({ config: 'wrangler.toml', env }, { hideWarnings: true });
  return config.queues.consumers ?? [];
}

describe('dead-letter consumers in wrangler.toml', () => {
  for (const env of ENVIRONMENTS) {
    describe(env ?? 'top level', () => {
      const consumers = consumersOf(env);
      const dlqs = consumers.filter((c) => c.queue.endsWith('-dlq'));

      it('every dead-letter queue a consumer sends to has a consumer of its own', () => {
        const targets = consumers.flatMap((c) => (c.dead_letter_queue ? [c.dead_letter_queue] : []));
        expect(targets).toHaveLength(7); // one per channel (email, sms, push, chat, webhook, inapp) and topics
        expect(dlqs.map((c) => c.queue).sort()).toEqual([...targets].sort());
      });

      it('the DLQ consumers retry across at least 24 h of D1 outage, within the Queues limits', () => {
        for (const consumer of dlqs) {
          const retries = consumer.max_retries ?? 3;
          const delay = consumer.retry_delay ?? 0;
          expect(retries, consumer.queue).toBeLessThanOrEqual(MAX_RETRIES_LIMIT);
          expect(delay, consumer.queue).toBeLessThanOrEqual(MAX_DELAY_SECONDS);
          // What wrangler.toml alone gives (an uncaught throw, a retry without a delay) ...
          expect(retries * delay, `${consumer.queue}: max_retries × retry_delay`).toBeGreaterThanOrEqual(
            DLQ_RETRY_BUDGET_SECONDS,
          );
          // ... and what the consumer's own backoff gives over the same number of retries, while
          // the queue still keeps the message.
          const span = deadLetterRetrySpanSeconds(retries);
          expect(span, `${consumer.queue}: the consumer's backoff`).toBeGreaterThanOrEqual(
            DLQ_RETRY_BUDGET_SECONDS,
          );
          expect(span, `${consumer.queue}: the queue's retention`).toBeLessThan(QUEUE_RETENTION_SECONDS);
        }
      });
    });
  }
});

describe('the DLQ consumer backoff', () => {
  it('grows with the attempts from 30 s and is capped at 30 minutes', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50, 100, 1000].map(deadLetterRetryDelaySeconds)).toEqual([
      30, 60, 120, 240, 480, 960, 1800, 1800, 1800, 1800, 1800,
    ]);
    expect(deadLetterRetryDelaySeconds(0)).toBe(30);
  });
});
