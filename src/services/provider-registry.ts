import { ProviderRegistry } from '../providers/registry';
import { allProviders } from './all-providers';

/**
 * One registry per isolate: provider instances (with their token caches) and circuit breakers,
 * shared by the queue consumer that sends and the admin API and dashboard that report on them.
 */
export const providerRegistry = new ProviderRegistry(allProviders);
