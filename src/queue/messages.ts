import { z } from 'zod';

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
});

export type QueueMessage = z.infer<typeof queueMessageSchema>;

/** Most delivery ids one message carries; keeps messages far below the 128 KB limit. */
export const MAX_IDS_PER_MESSAGE = 50;
