import type { Channel } from './channels';

/** Svix-like schedule: quick first retries, then hours. Index = attempts already made - 1. */
export const RETRY_SCHEDULE_SECONDS = [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200] as const;

/** Cloudflare Queues accept `delaySeconds` up to 12 hours. */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/** How many sends a delivery gets before it is dead-lettered. */
export const MAX_ATTEMPTS: Record<Channel, number> = {
  email: 8,
  sms: 6,
  push: 6,
  chat: 8,
  webhook: 10,
  inapp: 10,
};

/**
 * Delay before the next attempt, after `attemptsMade` failed ones: the schedule's step with
 * ±20% jitter (so a burst of failures does not return as a burst), never shorter than the
 * provider's `Retry-After`, never longer than the queue allows.
 */
export function retryDelaySeconds(
  attemptsMade: number,
  retryAfterSeconds?: number,
  random = Math.random,
): number {
  const index = Math.min(Math.max(attemptsMade - 1, 0), RETRY_SCHEDULE_SECONDS.length - 1);
  const base = RETRY_SCHEDULE_SECONDS[index] ?? MAX_QUEUE_DELAY_SECONDS;
  const jittered = Math.round(base * (0.8 + 0.4 * random()));
  const atLeast = Math.max(jittered, Math.ceil(retryAfterSeconds ?? 0));
  return Math.min(Math.max(atLeast, 1), MAX_QUEUE_DELAY_SECONDS);
}

/** Whether a delivery that has been tried `attemptsMade` times on `channel` may be tried again. */
export function hasAttemptsLeft(channel: Channel, attemptsMade: number): boolean {
  return attemptsMade < MAX_ATTEMPTS[channel];
}

/**
 * A retry delay shrunk by `scale` (`RETRY_DELAY_SCALE`, 0 < scale < 1), so an hour of backoff
 * plays out in a minute in chaos runs against the local stack; any other scale changes nothing.
 */
export function scaledDelaySeconds(seconds: number, scale: number): number {
  if (!Number.isFinite(scale) || scale <= 0 || scale >= 1) return seconds;
  return Math.max(1, Math.round(seconds * scale));
}
