import type { Channel } from '../domain/channels';
import type { Provider, ProviderEnv, SendRequest, SendResult } from './types';

/** Receives every message the sandbox "sends"; the deliver service writes them to the outbox. */
export type SandboxSink = (request: SendRequest) => void;

/**
 * Fault injection for chaos testing (all off by default): each send fails with a 503, a 429
 * with Retry-After, or a permanent error at the given rates, after an optional latency.
 */
export interface SandboxFaults {
  failRate: number;
  tooManyRate: number;
  permanentRate: number;
  latencyMs: number;
}

const rate = (env: ProviderEnv, name: string): number => {
  const value = Number(env[name] ?? 0);
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
};

export function sandboxFaultsFromEnv(env: ProviderEnv): SandboxFaults {
  const latency = Number(env.SANDBOX_LATENCY_MS ?? 0);
  return {
    failRate: rate(env, 'SANDBOX_FAIL_RATE'),
    tooManyRate: rate(env, 'SANDBOX_429_RATE'),
    permanentRate: rate(env, 'SANDBOX_PERMANENT_RATE'),
    latencyMs: Number.isFinite(latency) ? Math.min(30_000, Math.max(0, latency)) : 0,
  };
}

export interface SandboxOptions {
  faults?: SandboxFaults;
  random?: () => number;
}

/**
 * The default provider when no real one is configured: it sends nothing and hands the exact
 * message to the sink, so `npm start` and tests can see what would have gone out. (The outbox
 * absorbs a resend on a channel whose real providers take an idempotency key, as they would.)
 */
export function createSandboxProvider(
  channel: Channel,
  sink: SandboxSink,
  options: SandboxOptions = {},
): Provider {
  const random = options.random ?? Math.random;
  return {
    name: 'sandbox',
    channel,
    async send(request: SendRequest): Promise<SendResult> {
      const faults = options.faults;
      if (faults?.latencyMs) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
      if (faults) {
        const roll = random();
        if (roll < faults.failRate) return { kind: 'retryable', reason: 'sandbox: 503 injected failure' };
        if (roll < faults.failRate + faults.tooManyRate) {
          return { kind: 'retryable', reason: 'sandbox: 429 injected throttling', retryAfterSeconds: 2 };
        }
        if (roll < faults.failRate + faults.tooManyRate + faults.permanentRate) {
          return { kind: 'permanent', reason: 'sandbox: injected permanent failure' };
        }
      }
      sink(request);
      return { kind: 'sent', providerMessageId: `sandbox-${request.deliveryId}` };
    },
  };
}
