import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/lib/circuit-breaker';
import type { Provider, SendResult } from '../../src/providers/types';
import { sendWithFailover } from '../../src/services/delivery/failover';

describe('circuit breaker', () => {
  it('opens after N consecutive failures, half-opens after the cool-down, closes on success', () => {
    const breaker = new CircuitBreaker(3, 1000);
    for (let i = 0; i < 2; i++) breaker.failure('p', 0);
    expect(breaker.state('p', 0)).toBe('closed');
    breaker.failure('p', 10);
    expect(breaker.state('p', 10)).toBe('open');
    expect(breaker.allow('p', 500)).toBe(false);
    expect(breaker.retryInMs('p', 500)).toBe(510);
    expect(breaker.state('p', 1010)).toBe('half-open');
    expect(breaker.allow('p', 1010)).toBe(true);
    expect(breaker.allow('p', 1010)).toBe(false); // one trial at a time
    breaker.success('p');
    expect(breaker.state('p', 1010)).toBe('closed');
  });

  it('a failed trial re-opens the circuit for another cool-down', () => {
    const breaker = new CircuitBreaker(1, 1000);
    breaker.failure('p', 0);
    expect(breaker.allow('p', 1000)).toBe(true);
    breaker.failure('p', 1000);
    expect(breaker.state('p', 1500)).toBe('open');
    expect(breaker.state('p', 2000)).toBe('half-open');
  });

  it('a success resets the count of consecutive failures', () => {
    const breaker = new CircuitBreaker(2, 1000);
    breaker.failure('p', 0);
    breaker.success('p');
    breaker.failure('p', 0);
    expect(breaker.state('p', 0)).toBe('closed');
  });
});

function provider(name: string, answers: SendResult[]): Provider & { calls: number } {
  const p = {
    name,
    channel: 'email' as const,
    calls: 0,
    async send() {
      p.calls += 1;
      return answers[Math.min(p.calls - 1, answers.length - 1)] as SendResult;
    },
  };
  return p;
}

const request = {
  deliveryId: 'dlv_1',
  notificationId: 'n1',
  type: 't',
  priority: 'normal' as const,
  address: { channel: 'email' as const, email: 'a@example.com' },
  message: { subject: 's', text: 't' },
};

describe('failover', () => {
  it('primary 503 → secondary sends', async () => {
    const a = provider('a', [{ kind: 'retryable', reason: '503' }]);
    const b = provider('b', [{ kind: 'sent', providerMessageId: 'm1' }]);
    const out = await sendWithFailover([a, b], request, new CircuitBreaker());
    expect(out.provider).toBe('b');
    expect(out.result).toEqual({ kind: 'sent', providerMessageId: 'm1' });
  });

  it('a permanent answer about the message does not move on', async () => {
    const a = provider('a', [{ kind: 'permanent', reason: 'invalid recipient', invalidAddress: true }]);
    const b = provider('b', [{ kind: 'sent' }]);
    const out = await sendWithFailover([a, b], request, new CircuitBreaker());
    expect(out.provider).toBe('a');
    expect(b.calls).toBe(0);
  });

  it('a configuration error moves on: it is the provider that is broken, not the message', async () => {
    const a = provider('a', [{ kind: 'permanent', reason: 'invalid api key', configError: true }]);
    const b = provider('b', [{ kind: 'sent' }]);
    expect((await sendWithFailover([a, b], request, new CircuitBreaker())).provider).toBe('b');
  });

  it('both down → retryable with the longest Retry-After', async () => {
    const a = provider('a', [{ kind: 'retryable', reason: '429', retryAfterSeconds: 30 }]);
    const b = provider('b', [{ kind: 'retryable', reason: '503', retryAfterSeconds: 90 }]);
    const out = await sendWithFailover([a, b], request, new CircuitBreaker());
    expect(out.result).toMatchObject({ kind: 'retryable', retryAfterSeconds: 90 });
    expect(out.result.kind === 'retryable' && out.result.reason).toBe('a: 429; b: 503');
  });

  it('an open circuit skips the provider until its cool-down, then lets one trial through', async () => {
    const breaker = new CircuitBreaker(2, 10_000);
    const a = provider('a', [{ kind: 'retryable', reason: '503' }]);
    const b = provider('b', [{ kind: 'sent' }]);
    let now = 0;
    const clock = () => now;
    await sendWithFailover([a, b], request, breaker, clock);
    await sendWithFailover([a, b], request, breaker, clock);
    expect(a.calls).toBe(2);
    await sendWithFailover([a, b], request, breaker, clock);
    expect(a.calls).toBe(2); // open: skipped
    expect(b.calls).toBe(3);
    now = 10_000;
    await sendWithFailover([a, b], request, breaker, clock);
    expect(a.calls).toBe(3); // half-open trial
  });

  it('every circuit open → retry when the first one half-opens', async () => {
    const breaker = new CircuitBreaker(1, 20_000);
    const a = provider('a', [{ kind: 'retryable', reason: '503' }]);
    await sendWithFailover([a], request, breaker, () => 0);
    const out = await sendWithFailover([a], request, breaker, () => 5000);
    expect(out.result).toMatchObject({ kind: 'retryable', retryAfterSeconds: 15, reason: 'a: circuit open' });
  });

  it('a provider that throws is treated as retryable', async () => {
    const a: Provider = {
      name: 'a',
      channel: 'email',
      send: async () => {
        throw new Error('boom');
      },
    };
    const out = await sendWithFailover([a], request, new CircuitBreaker());
    expect(out.result).toMatchObject({ kind: 'retryable', reason: 'a: provider threw: boom' });
  });
});
