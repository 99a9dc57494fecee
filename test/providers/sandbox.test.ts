import { describe, expect, it } from 'vitest';
import { createSandboxProvider, sandboxFaultsFromEnv } from '../../src/providers/sandbox';
import type { SendRequest } from '../../src/providers/types';
import { deliveryOf, expectOutcome } from './harness';

const request = deliveryOf({ channel: 'email', email: 'ada@example.org' }, { subject: 'Hi', text: 'Hello' });

/** A sandbox with the faults of `env`, a fixed roll, and the messages it captured. */
function sandboxWith(env: Record<string, string>, roll: number) {
  const captured: SendRequest[] = [];
  const provider = createSandboxProvider('email', (r) => captured.push(r), {
    faults: sandboxFaultsFromEnv(env),
    random: () => roll,
  });
  return { provider, captured };
}

describe('sandbox faults', () => {
  it('SANDBOX_TIMEOUT_RATE is off by default', () => {
    expect(sandboxFaultsFromEnv({}).timeoutRate).toBe(0);
    expect(sandboxFaultsFromEnv({ SANDBOX_TIMEOUT_RATE: '0.25' }).timeoutRate).toBe(0.25);
  });

  it('SANDBOX_TIMEOUT_RATE accepts the message (it reaches the outbox) and answers unknown', async () => {
    const { provider, captured } = sandboxWith({ SANDBOX_TIMEOUT_RATE: '0.5' }, 0.4);
    const result = await provider.send(request);
    expectOutcome(result, { kind: 'unknown', reason: /^sandbox: injected timeout/ });
    expect(captured).toEqual([request]);
  });

  it('a roll past every rate sends; the timeout range comes after the failures', async () => {
    const env = { SANDBOX_FAIL_RATE: '0.1', SANDBOX_TIMEOUT_RATE: '0.1' };
    const sent = sandboxWith(env, 0.2);
    expectOutcome(await sent.provider.send(request), {
      kind: 'sent',
      providerMessageId: 'sandbox-dlv_01JTESTDELIVERY',
    });
    expect(sent.captured).toHaveLength(1);
    const timedOut = sandboxWith(env, 0.15);
    expect((await timedOut.provider.send(request)).kind).toBe('unknown');
    expect(timedOut.captured).toHaveLength(1);
    const failed = sandboxWith(env, 0.05);
    expect((await failed.provider.send(request)).kind).toBe('retryable');
    expect(failed.captured).toHaveLength(0);
  });
});
