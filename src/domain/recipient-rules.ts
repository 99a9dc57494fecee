import type { Channel, Priority } from './channels';

/**
 * The rules a recipient's Durable Object applies before a delivery is sent: how long a
 * consumer may hold a delivery, how long a dedupe key blocks its twins from other notifications,
 * and how many notifications a channel may carry in a sliding window (a notification's deliveries
 * on a channel are one send). Pure: every instant is passed in as `nowMs`.
 */

/** A sliding-window cap: at most `limit` sends in any `windowSeconds`. */
export interface RateLimit {
  limit: number;
  windowSeconds: number;
}

const HOUR = 3600;
const DAY = 24 * HOUR;

/**
 * Per-channel caps when a notification type has no override. `null` means uncapped: a webhook is
 * a machine endpoint that asked for every event, not a person to protect from noise.
 */
export const DEFAULT_RATE_LIMITS: Readonly<Record<Channel, RateLimit | null>> = {
  sms: { limit: 5, windowSeconds: HOUR },
  push: { limit: 10, windowSeconds: HOUR },
  email: { limit: 20, windowSeconds: DAY },
  chat: { limit: 30, windowSeconds: HOUR },
  webhook: null,
  // An inbox item is silent: nothing to protect the user from (the inbox keeps the newest items).
  inapp: null,
};

/**
 * How long a consumer owns a delivery it was told to send. Long enough to cover rendering and a
 * provider call with its timeout, short enough that a crashed consumer's delivery is retried soon.
 */
export const LEASE_MS = 2 * 60 * 1000;

/** Dedupe window when the request names none. */
export const DEFAULT_DEDUPE_WINDOW_SECONDS = DAY;

/** One delivery the consumer is about to send, as asked of the recipient's Durable Object. */
export interface DecisionRequest {
  deliveryId: string;
  /**
   * The notification the delivery belongs to. Its deliveries on a channel (several device tokens,
   * chat channels, addresses) are one message to the person: they share one cap slot and pass one
   * dedupe claim together.
   */
  notificationId: string;
  channel: Channel;
  type: string;
  priority: Priority;
  dedupeKey?: string;
  /** Defaults to {@link DEFAULT_DEDUPE_WINDOW_SECONDS}. */
  dedupeWindowSeconds?: number;
  /**
   * A type-specific cap, counted per (channel, type) and replacing the channel's default;
   * `null` = no cap for this type; `undefined` = the channel default, counted per channel.
   */
  rateLimit?: RateLimit | null;
  nowMs: number;
}

/** The Durable Object's answer for one {@link DecisionRequest}. */
export type Verdict =
  | { verdict: 'send'; leaseUntilMs: number }
  /** Another consumer holds this delivery's lease: do not send. */
  | { verdict: 'leased' }
  | { verdict: 'duplicate'; firstDeliveryId: string }
  /** Over the cap (normal/high): retry at `untilMs`, the instant the window frees a slot. */
  | { verdict: 'defer'; untilMs: number }
  /** Over the cap (low): record the delivery as rate_limited. */
  | { verdict: 'drop' };

/** What the consumer reports after the providers answered. */
export interface DeliveryOutcome {
  deliveryId: string;
  /** False when no provider accepted it: the delivery gives back its rate slot and dedupe claim. */
  sent: boolean;
  nowMs: number;
}

/**
 * A send that counts against the recipient's caps: one per notification and channel, however many
 * of the notification's deliveries went on that channel.
 */
export interface SendRecord {
  notificationId: string;
  channel: Channel;
  type: string;
  sentAtMs: number;
}

/** The cap that governs a request, and whether it counts only sends of the request's type. */
export interface RateScope {
  limit: RateLimit;
  perType: boolean;
}

/** Whether `value` is a usable cap: a whole number of sends ≥ 1 over a positive window. */
export function isValidRateLimit(value: unknown): value is RateLimit {
  if (typeof value !== 'object' || value === null) return false;
  const { limit, windowSeconds } = value as Partial<RateLimit>;
  return (
    Number.isInteger(limit) &&
    (limit ?? 0) >= 1 &&
    typeof windowSeconds === 'number' &&
    Number.isFinite(windowSeconds) &&
    windowSeconds > 0
  );
}

/**
 * The cap that applies to a request, or null when it is uncapped. A limit of 0 is rejected rather
 * than read as "never": that is an opt-out, which preferences express, and a window that never
 * frees could not give `defer` an instant.
 */
export function rateScopeOf(channel: Channel, override: RateLimit | null | undefined): RateScope | null {
  if (override === null) return null;
  if (override !== undefined) {
    if (!isValidRateLimit(override)) {
      throw new RangeError('rateLimit needs an integer limit >= 1 and a positive windowSeconds');
    }
    return { limit: override, perType: true };
  }
  const fallback = DEFAULT_RATE_LIMITS[channel];
  return fallback ? { limit: fallback, perType: false } : null;
}

/**
 * Until when a send must be kept to answer every cap that can count it: the channel default
 * (which counts every type on the channel) and the request's own override. Null when no cap can
 * ever count it, so nothing needs storing.
 */
export function sendRetainedUntil(
  channel: Channel,
  override: RateLimit | null | undefined,
  sentAtMs: number,
): number | null {
  const windows = [DEFAULT_RATE_LIMITS[channel]?.windowSeconds, override?.windowSeconds].filter(
    (seconds): seconds is number => seconds !== undefined,
  );
  if (windows.length === 0) return null;
  return sentAtMs + Math.max(...windows) * 1000;
}

/**
 * The first instant at which fewer than `limit.limit` of `sentAtMs` fall in the sliding window
 * (a send at `s` counts at instant `t` while `t < s + window`), or null when the cap is not reached
 * at `nowMs`. Sends stamped after `nowMs` (a consumer with a faster clock) count too.
 *
 * With `n` sends in the window and a cap of `L`, the `n - L + 1` oldest must age out, so the
 * window frees when the `(n - L)`-th oldest does: exactly `sorted[n - L] + window`.
 */
export function windowFreesAt(sentAtMs: readonly number[], limit: RateLimit, nowMs: number): number | null {
  const windowMs = limit.windowSeconds * 1000;
  const inWindow = sentAtMs.filter((sentAt) => nowMs < sentAt + windowMs).sort((a, b) => a - b);
  if (inWindow.length < limit.limit) return null;
  const freeing = inWindow[inWindow.length - limit.limit];
  return freeing === undefined ? null : freeing + windowMs;
}

/** The rate-limit part of a decision: `send` (under the cap, or critical), `defer` or `drop`. */
export type RateVerdict = { verdict: 'send' } | { verdict: 'defer'; untilMs: number } | { verdict: 'drop' };

/**
 * Applies the cap that governs `request` to the recipient's recorded sends. A notification that
 * already has a send on the request's channel goes again without taking another slot: its other
 * deliveries (a second device, a redelivery after a crash) are the same message, so if the first
 * could go, they can. Critical deliveries are never held back (a login code or a fraud alert
 * outranks a cap) but still count, so the next routine message waits for the budget.
 */
export function rateVerdict(
  request: Pick<DecisionRequest, 'notificationId' | 'channel' | 'type' | 'priority' | 'rateLimit' | 'nowMs'>,
  sends: readonly SendRecord[],
): RateVerdict {
  const scope = rateScopeOf(request.channel, request.rateLimit);
  if (scope === null || request.priority === 'critical') return { verdict: 'send' };
  const onChannel = sends.filter((send) => send.channel === request.channel);
  if (onChannel.some((send) => send.notificationId === request.notificationId)) return { verdict: 'send' };
  const counted = onChannel
    .filter((send) => !scope.perType || send.type === request.type)
    .map((send) => send.sentAtMs);
  const freesAt = windowFreesAt(counted, scope.limit, request.nowMs);
  if (freesAt === null) return { verdict: 'send' };
  return request.priority === 'low' ? { verdict: 'drop' } : { verdict: 'defer', untilMs: freesAt };
}

/** A live dedupe claim: which notification made it, and its deliveries that went under it. */
export interface DedupeClaim {
  notificationId: string;
  /** Deliveries let through under the claim, first first; the first is named to its twins. */
  deliveryIds: readonly string[];
  expiresAtMs: number;
}

/**
 * Whether `request` is a twin of the claim on its (channel, type, dedupe key): a delivery of
 * another notification while the claim lives. The claiming notification's own deliveries (its
 * other devices or addresses, a redelivery) are no duplicates: they pass together.
 */
export function dedupeVerdict(
  request: Pick<DecisionRequest, 'deliveryId' | 'notificationId' | 'nowMs'>,
  claim: DedupeClaim | undefined,
): { verdict: 'duplicate'; firstDeliveryId: string } | null {
  if (claim === undefined || claim.expiresAtMs <= request.nowMs) return null;
  if (claim.notificationId === request.notificationId || claim.deliveryIds.includes(request.deliveryId))
    return null;
  return { verdict: 'duplicate', firstDeliveryId: claim.deliveryIds[0] ?? claim.notificationId };
}

/** When a dedupe claim made at `nowMs` stops blocking its twins. */
export function dedupeExpiresAt(nowMs: number, windowSeconds = DEFAULT_DEDUPE_WINDOW_SECONDS): number {
  if (!Number.isFinite(windowSeconds) || windowSeconds <= 0) {
    throw new RangeError('dedupeWindowSeconds must be a positive number');
  }
  return nowMs + windowSeconds * 1000;
}
