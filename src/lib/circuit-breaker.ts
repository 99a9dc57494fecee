/**
 * A circuit breaker per key: it opens after `threshold` consecutive failures, lets one trial
 * through after `cooldownMs` (half-open), and closes again on a success. State lives in the
 * isolate: each isolate learns on its own that a provider is down, which costs a few failed calls
 * per isolate and no shared storage write per send.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

interface Entry {
  failures: number;
  openedAt: number | null;
  trialInFlight: boolean;
}

export class CircuitBreaker {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly threshold = 5,
    private readonly cooldownMs = 30_000,
  ) {}

  state(key: string, nowMs: number): CircuitState {
    const entry = this.entries.get(key);
    if (!entry || entry.openedAt === null) return 'closed';
    return nowMs - entry.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  /** Whether a call may go out now; in half-open, only one trial at a time. */
  allow(key: string, nowMs: number): boolean {
    const state = this.state(key, nowMs);
    if (state === 'closed') return true;
    if (state === 'open') return false;
    const entry = this.entries.get(key);
    if (!entry || entry.trialInFlight) return false;
    entry.trialInFlight = true;
    return true;
  }

  /** Milliseconds until an open circuit lets a trial through (0 when it already would). */
  retryInMs(key: string, nowMs: number): number {
    const entry = this.entries.get(key);
    if (!entry || entry.openedAt === null) return 0;
    return Math.max(0, entry.openedAt + this.cooldownMs - nowMs);
  }

  success(key: string): void {
    this.entries.delete(key);
  }

  failure(key: string, nowMs: number): void {
    const entry = this.entries.get(key) ?? { failures: 0, openedAt: null, trialInFlight: false };
    entry.failures += 1;
    if (entry.trialInFlight || entry.failures >= this.threshold) entry.openedAt = nowMs;
    entry.trialInFlight = false;
    this.entries.set(key, entry);
  }
}
