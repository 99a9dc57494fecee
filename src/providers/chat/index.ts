import type { ProviderDefinition } from '../types';
import { discord } from './discord';
import { slack } from './slack';
import { teams } from './teams';
import { telegram } from './telegram';

/** Providers of the chat channel, one per external platform. */
export const chatProviders: ProviderDefinition[] = [slack, discord, teams, telegram];
