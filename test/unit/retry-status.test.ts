import { describe, expect, it } from 'vitest';
import {
  hasAttemptsLeft,
  MAX_QUEUE_DELAY_SECONDS,
  RETRY_SCHEDULE_SECONDS,
  retryDelaySeconds,
} from '../../src/domain/retry';
import { canTransition } from '../../src/domain/status';

describe('retry schedule', () => {
  it('follows the schedule with ±20% jitter', () => {
    RETRY_SCHEDULE_SECONDS.forEach((step, i) => {
      expect(retryDelaySeconds(i + 1, undefined, () => 0)).toBe(Math.max(1, Math.round(step * 0.8)));
      expect(retryDelaySeconds(i + 1, undefined, () => 0.5)).toBe(step);
      expect(retryDelaySeconds(i + 1, undefined, () => 0.999999)).toBe(
        Math.min(MAX_QUEUE_DELAY_SECONDS, Math.round(step * 1.2)),
      );
    });
  });

  it('never retries sooner than Retry-After and never later than the queue allows', () => {
    expect(retryDelaySeconds(1, 300, () => 0.5)).toBe(300);
    expect(retryDelaySeconds(1, 2, () => 0.5)).toBe(5);
    expect(retryDelaySeconds(50, 999_999, () => 0.5)).toBe(MAX_QUEUE_DELAY_SECONDS);
  });

  it('caps attempts per channel', () => {
    expect(hasAttemptsLeft('sms', 5)).toBe(true);
    expect(hasAttemptsLeft('sms', 6)).toBe(false);
    expect(hasAttemptsLeft('webhook', 9)).toBe(true);
  });
});

describe('status machine', () => {
  it.each([
    ['created', 'queued', true],
    ['queued', 'sent', true],
    ['sent', 'delivered', true],
    ['delivered', 'opened', true],
    ['opened', 'clicked', true],
    ['bounced', 'opened', false],
    ['clicked', 'opened', false],
    ['sent', 'queued', false],
    ['skipped', 'sent', false],
    ['failed', 'queued', true],
  ] as const)('%s → %s is %s', (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });
});
