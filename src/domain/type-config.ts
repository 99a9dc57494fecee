import { z } from 'zod';
import { CHANNELS, PRIORITIES } from './channels';

const RateLimitSchema = z
  .object({
    limit: z.number().int().min(1).max(100_000),
    windowSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600),
  })
  .strict();

/**
 * A notification type's configuration, stored next to its templates (`templates/<type>/type.json`).
 * Every field is optional: an absent file means every default.
 */
export const TypeConfigSchema = z
  .object({
    /** The channels used when the producer names none (narrowed to templated channels). */
    channels: z.array(z.enum(CHANNELS)).min(1).optional(),
    /** The priority when the producer gives none. */
    priority: z.enum(PRIORITIES).optional(),
    /** A grouping shown to users in preference pages, e.g. `billing`, `security`, `marketing`. */
    category: z.string().min(1).max(64).optional(),
    /** Per-channel caps replacing the channel defaults for this type; `null` removes the cap. */
    rateLimits: z.partialRecord(z.enum(CHANNELS), RateLimitSchema.nullable()).optional(),
    /** How long a `dedupeKey` blocks its twins, in seconds (default 24 h). */
    dedupeWindowSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .optional(),
    preferences: z
      .object({
        /** `opt-in`: sent unless the user turned it off; `opt-out`: sent only if the user turned it on. */
        default: z.enum(['opt-in', 'opt-out']).default('opt-in'),
        /** A required type (e.g. `security_alert`) cannot be turned off by the user. */
        required: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** Rewrite links for click tracking in push, SMS and chat (email links are always tracked). */
    trackClicks: z.boolean().optional(),
    /**
     * After a timeout once the request left (the provider may have delivered it), on a provider
     * without an idempotency key: `retry` on the same provider (risking a second message) or
     * `give-up` (status `unknown`). Default: `retry` for critical notifications, `give-up` otherwise.
     * A provider with an idempotency key is always retried with the same key.
     */
    unknownOutcome: z.enum(['retry', 'give-up']).optional(),
  })
  .strict();

export type TypeConfig = z.infer<typeof TypeConfigSchema>;
