import type { ProviderDefinition } from '../types';
import { inbox } from './inbox';

/** Providers of the in-app channel: the inbox Durable Object. */
export const inappProviders: ProviderDefinition[] = [inbox];
