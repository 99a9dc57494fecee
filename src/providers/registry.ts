import type { Address } from '../domain/address';
import type { Channel } from '../domain/channels';
import { CircuitBreaker } from '../lib/circuit-breaker';
import { createSandboxProvider, type SandboxSink, sandboxFaultsFromEnv } from './sandbox';
import {
  defaultDeps,
  type Provider,
  type ProviderDefinition,
  type ProviderDeps,
  type ProviderEnv,
} from './types';

/** The `<CHANNEL>_PROVIDERS` var that lists a channel's providers in failover order. */
export const PROVIDERS_VAR: Record<Channel, string> = {
  email: 'EMAIL_PROVIDERS',
  sms: 'SMS_PROVIDERS',
  push: 'PUSH_PROVIDERS',
  chat: 'CHAT_PROVIDERS',
  webhook: 'WEBHOOK_PROVIDERS',
  inapp: 'INAPP_PROVIDERS',
};

/** The provider names configured for a channel, in order; `sandbox` when none is. */
export function configuredProviderNames(env: ProviderEnv, channel: Channel): string[] {
  const raw = env[PROVIDERS_VAR[channel]];
  const names =
    typeof raw === 'string'
      ? raw
          .split(',')
          .map((s) => s.trim().toLowerCase())
          .filter(Boolean)
      : [];
  // The inbox is Herald's own: in-app items reach it in development too.
  return names.length > 0 ? names : [channel === 'inapp' ? 'inbox' : 'sandbox'];
}

export class UnknownProviderError extends Error {
  constructor(
    readonly provider: string,
    readonly channel: Channel,
  ) {
    super(`${PROVIDERS_VAR[channel]} lists "${provider}", which is not a ${channel} provider`);
    this.name = 'UnknownProviderError';
  }
}

/** Which address platform a provider serves; undefined means every address of its channel. */
export function addressPlatform(address: Address): string | undefined {
  if (address.channel === 'push' || address.channel === 'chat') return address.platform;
  if (address.channel === 'webhook') return 'webhook';
  return undefined;
}

/**
 * Builds a channel's provider chain from its definitions and the env. Instances are kept per env
 * object (one per isolate in production), so a provider's token cache survives across batches.
 */
export class ProviderRegistry {
  private readonly instances = new WeakMap<object, Map<string, Provider>>();
  /** Per-isolate circuit breakers, keyed `<channel>:<provider>`. */
  readonly breaker = new CircuitBreaker();

  constructor(private readonly definitions: readonly ProviderDefinition[]) {}

  /**
   * The chain for one channel, without the providers an operator switched off. Throws
   * MissingCredentialsError / UnknownProviderError when a listed provider is misconfigured.
   */
  chain(
    env: ProviderEnv,
    channel: Channel,
    sink: SandboxSink,
    deps: ProviderDeps = defaultDeps(),
    switches: ReadonlyMap<string, boolean> = new Map(),
  ): Provider[] {
    const names = configuredProviderNames(env, channel).filter((name) => switches.get(name) !== false);
    return names.map((name) => {
      if (name === 'sandbox')
        return createSandboxProvider(channel, sink, { faults: sandboxFaultsFromEnv(env) });
      return this.instance(env, channel, name, deps);
    });
  }

  /** The definition of a provider name, if Herald has one (`sandbox` is built in). */
  knows(name: string): boolean {
    return name === 'sandbox' || this.definitions.some((d) => d.name === name);
  }

  get all(): readonly ProviderDefinition[] {
    return this.definitions;
  }

  private instance(env: ProviderEnv, channel: Channel, name: string, deps: ProviderDeps): Provider {
    let cache = this.instances.get(env);
    if (!cache) {
      cache = new Map();
      this.instances.set(env, cache);
    }
    const key = `${channel}:${name}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const definition = this.definitions.find((d) => d.channel === channel && d.name === name);
    if (!definition) throw new UnknownProviderError(name, channel);
    const provider = definition.create(env, deps);
    cache.set(key, provider);
    return provider;
  }
}

/** The providers in a chain that can serve this address (an apns token goes to APNs only). */
export function providersFor(chain: readonly Provider[], address: Address): Provider[] {
  const platform = addressPlatform(address);
  return chain.filter(
    (p) => p.name === 'sandbox' || platform === undefined || !p.platforms || p.platforms.includes(platform),
  );
}
