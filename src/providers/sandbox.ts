import { type Channel, IDEMPOTENT_CHANNELS } from '../domain/channels';
import type { Provider, ProviderEnv, SendRequest, SendResult } from './types';

/** Receives every message the sandbox "sends"; the deliver service writes them to the outbox. */
export type SandboxSink = (request: SendRequest) => void;

/**
 * Fault injection for chaos testing (all off by default): each send fails with a 503, a 429
 * with Retry-After, or a permanent error, or is accepted but answered too late (an unknown
 * outcome), at the given rates, after an optional latency.
 */
export interface SandboxFaults {
  failRate: number;
  tooManyRate: number;
  permanentRate: number;
  /** The message is captured (it reaches the outbox) and the answer is `unknown`, as after a timeout. */
  timeoutRate: number;
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
    timeoutRate: rate(env, 'SANDBOX_TIMEOUT_RATE'),
    latencyMs: Number.isFinite(latency) ? Math.min(30_000, Math.max(0, latency)) : 0,
  };
}

export interface SandboxOptions {
  faults?: SandboxFaults;
  random?: () => number;
}

/**
 * The default provider when no real one is configured: it sends nothing and hands the exact
 * message to the sink, so `npm start` and tests can see what would have gone out. It is
 * idempotent where the channel's real providers take an idempotency key; the outbox keeps every
 * send and marks a repeat of a key already seen, which a real provider would have dropped.
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
    ...(IDEMPOTENT_CHANNELS.has(channel) ? { idempotent: true } : {}),
    async send(request: SendRequest): Promise<SendResult> {
      const faults = options.faults;
      if (faults?.latencyMs) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
      const fault = faults ? injectedFault(faults, random()) : undefined;
      if (fault && fault.kind !== 'unknown') return fault;
      sink(request);
      return fault ?? { kind: 'sent', providerMessageId: `sandbox-${request.deliveryId}` };
    },
  };
}

/** The fault a roll in [0, 1) falls on, in the order fail, 429, permanent, timeout; none past them. */
function injectedFault(faults: SandboxFaults, roll: number): SendResult | undefined {
  let bound = faults.failRate;
  if (roll < bound) return { kind: 'retryable', reason: 'sandbox: 503 injected failure' };
  bound += faults.tooManyRate;
  if (roll < bound) {
    return { kind: 'retryable', reason: 'sandbox: 429 injected throttling', retryAfterSeconds: 2 };
  }
  bound += faults.permanentRate;
  if (roll < bound) return { kind: 'permanent', reason: 'sandbox: injected permanent failure' };
  bound += faults.timeoutRate;
  // Accepted, then the answer came after the timeout: the message is out, the outcome unknown.
  if (roll < bound)
    return { kind: 'unknown', reason: 'sandbox: injected timeout after the message was accepted' };
  return undefined;
}
