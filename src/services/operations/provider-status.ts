import type { Env } from '../../config/env';
import { CHANNELS, type Channel } from '../../domain/channels';
import { configuredProviderNames } from '../../providers/registry';
import { MissingCredentialsError } from '../../providers/types';
import type { Services } from '../container';
import { providerSwitches } from './provider-switches';

/** One provider of one channel, as the admin API and the dashboard's Providers page show it. */
export interface ProviderStatus {
  name: string;
  channel: Channel;
  platforms: string[];
  listed: boolean;
  /** Position in the channel's failover order, from 1; null when not listed. */
  order: number | null;
  enabled: boolean;
  credentials: string;
  circuit: 'closed' | 'open' | 'half-open';
}

function credentialsOf(services: Services, name: string, channel: Channel): string {
  if (name === 'sandbox') return 'ok';
  const definition = services.registry.all.find((d) => d.name === name && d.channel === channel);
  if (!definition) return 'unknown provider';
  try {
    definition.create(services.env, {
      fetch: () => Promise.reject(new Error('not for sending')),
      now: Date.now,
    });
    return 'ok';
  } catch (error) {
    if (error instanceof MissingCredentialsError) return `missing: ${error.variables.join(', ')}`;
    return `invalid: ${error instanceof Error ? error.message.slice(0, 200) : 'configuration error'}`;
  }
}

/**
 * Every provider per channel: listed in `<CHANNEL>_PROVIDERS`, switched on, credentials present,
 * circuit state in this isolate (`GET /v1/admin/providers` and the dashboard).
 */
export async function providerStatuses(services: Services, nowMs: number): Promise<ProviderStatus[]> {
  const { env, registry } = services;
  const switches = await providerSwitches(services, nowMs);
  return CHANNELS.flatMap((channel) => {
    const listed = configuredProviderNames(env, channel);
    const names = ['sandbox', ...registry.all.filter((d) => d.channel === channel).map((d) => d.name)];
    return names.map((name) => {
      const definition = registry.all.find((d) => d.name === name && d.channel === channel);
      const order = listed.indexOf(name);
      return {
        name,
        channel,
        platforms: definition?.platforms ? [...definition.platforms] : [],
        listed: order >= 0,
        order: order >= 0 ? order + 1 : null,
        enabled: switches.get(name) !== false,
        credentials: order >= 0 ? credentialsOf(services, name, channel) : 'not listed',
        circuit: registry.breaker.state(`${channel}:${name}`, nowMs),
      };
    });
  });
}

/** Whether any channel delivers through the sandbox provider (the outbox exists only then). */
export function sandboxOn(env: Env): boolean {
  return CHANNELS.some((channel) => configuredProviderNames(env, channel).includes('sandbox'));
}
