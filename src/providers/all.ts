import type { ProviderDefinition } from './types';

/** Every real provider Herald ships, by channel. `sandbox` is built in by the registry. */
export const allProviders: readonly ProviderDefinition[] = [];
