import { z } from 'zod';
import { CHANNELS, PRIORITIES } from './channels';
import { parseDuration } from './durations';
import { WEEKDAYS } from './quiet-hours';
import { STATUSES } from './status';

/** The longest an escalation step may wait: a month. */
const MAX_ESCALATION_SECONDS = 30 * 86_400;

const DurationSchema = z.string().refine((text) => {
  const seconds = parseDuration(text);
  return seconds !== null && seconds >= 1 && seconds <= MAX_ESCALATION_SECONDS;
}, 'a duration like 90s, 15m, 2h or 1d, at most 30d');

/** The most items a digest holds (and shows: the newest). */
export const MAX_DIGEST_ITEMS = 50;

/** Statuses of an earlier step that make a later step unnecessary, by default. */
export const DEFAULT_ESCALATION_UNLESS = ['delivered', 'opened', 'clicked'] as const;

const EscalationStepSchema = z
  .object({
    channel: z.enum(CHANNELS),
    /** From the notification's acceptance; the first step has none (it goes at once). */
    after: DurationSchema.optional(),
    /** An earlier step reaching one of these skips this step. */
    unless: z.array(z.enum(STATUSES)).min(1).max(STATUSES.length).optional(),
  })
  .strict();

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
    /**
     * Channels one after another: the first at once, each later one `after` the acceptance unless
     * an earlier one reached a status in `unless` (default delivered, opened, clicked) first; a
     * failed earlier step brings the next forward. Used when the producer names no channels.
     */
    /**
     * Notifications of the type to one recipient on these channels, with the same rendered `key`,
     * inside `window` become one delivery when it closes (or at `maxItems`; the first goes alone
     * at once with `sendFirst`). The template sees `digest: { count, items, firstAt, lastAt }`.
     */
    digest: z
      .object({
        /** A duration from the first item, or a schedule in the recipient's time zone. */
        window: z.union([
          DurationSchema,
          z
            .object({
              at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM, 00:00 to 23:59'),
              days: z.array(z.enum(WEEKDAYS)).min(1).max(7).optional(),
            })
            .strict(),
        ]),
        /** Liquid over the notification's data, e.g. `{{ data.thread_id }}`; none: one digest per type. */
        key: z.string().min(1).max(256).optional(),
        maxItems: z.number().int().min(2).max(MAX_DIGEST_ITEMS).default(MAX_DIGEST_ITEMS),
        sendFirst: z.boolean().default(false),
        channels: z.array(z.enum(CHANNELS)).min(1).optional(),
      })
      .strict()
      .optional(),
    escalation: z
      .array(EscalationStepSchema)
      .min(2)
      .max(5)
      .refine((steps) => steps[0]?.after === undefined, {
        message: 'the first step goes at once: no after',
        path: [0, 'after'],
      })
      .refine((steps) => steps.slice(1).every((s) => s.after !== undefined), {
        message: 'every later step needs after',
      })
      .refine((steps) => new Set(steps.map((s) => s.channel)).size === steps.length, {
        message: 'each channel once',
      })
      .optional(),
  })
  .strict();

export type TypeConfig = z.infer<typeof TypeConfigSchema>;
