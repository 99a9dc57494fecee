import { z } from 'zod';
import { ERROR_CLASSES } from '../domain/metric-counters';
import { STATUSES } from '../domain/status';

/**
 * An outcome the consumer could not record (D1 refused the write) after a provider answered: it
 * travels with the delivery's next message until D1 takes it, so the answer is never forgotten
 * and never asked for again.
 */
export const carriedOutcomeSchema = z.object({
  status: z.enum(STATUSES),
  reason: z.string().max(2000).optional(),
  provider: z.string().max(64).optional(),
  providerMessageId: z.string().max(512).optional(),
  templateVersion: z.string().max(128).optional(),
  attempted: z.boolean(),
  /** The providers that answered this attempt with an error: counted when the outcome is recorded. */
  errors: z
    .array(z.object({ provider: z.string().max(64), class: z.enum(ERROR_CLASSES) }))
    .max(64)
    .optional(),
  /** How many times it has travelled already (for the backoff and the alert). */
  carries: z.number().int().min(0).default(0),
});

export type CarriedOutcome = z.infer<typeof carriedOutcomeSchema>;

/**
 * A queue message carries delivery ids and an attempt count, never personal data or rendered
 * content. One message may carry several deliveries of the same channel (fewer queue operations).
 */
export const queueMessageSchema = z.object({
  v: z.literal(1),
  deliveryIds: z.array(z.string().min(1).max(64)).min(1).max(100),
  /** Herald's own attempt counter: retries of a subset are re-sent as new messages. */
  attempt: z.number().int().min(0).default(0),
  /**
   * When ingest handed the deliveries to the queue (epoch ms), carried on by every re-send. Ingest
   * sends before it writes the rows, so a delivery not found yet is waited for until this is old.
   */
  at: z.number().int().min(0).optional(),
  /**
   * Deliveries whose last answer was unknown (a timeout after the request left): the provider
   * they must be retried on, with the same idempotency key, never another one.
   */
  pins: z.record(z.string(), z.string().max(64)).optional(),
  /** Outcomes D1 could not take yet, by delivery id. */
  outcomes: z.record(z.string(), carriedOutcomeSchema).optional(),
  /** A digest's carrier: the delivery ids folded into it (itself included), oldest first. */
  digests: z.record(z.string(), z.array(z.string().min(1).max(64)).min(1).max(100)).optional(),
});

export type QueueMessage = z.infer<typeof queueMessageSchema>;

/** Most delivery ids one message carries; keeps messages far below the 128 KB limit. */
export const MAX_IDS_PER_MESSAGE = 50;

/**
 * A page of a topic send's expansion: which notification, which database's subscribers, from
 * after which user id. The send itself (topics, data) is read from its record, never carried.
 */
export const topicPageMessageSchema = z.object({
  v: z.literal(1),
  notificationId: z.string().min(1).max(128),
  database: z.string().min(1).max(16),
  /** The last user id of the pages done (null: from the start). */
  after: z.string().min(1).max(256).nullable(),
  /** The database layout the page was planned under (ShardRouter.layout). */
  layout: z.string().min(1).max(8000),
  /** When ingest accepted the send (epoch ms): its record is waited for until this is old. */
  at: z.number().int().min(0),
});

export type TopicPageMessage = z.infer<typeof topicPageMessageSchema>;
