import type { ProviderDefinition } from '../types';
import { apns } from './apns';
import { fcm } from './fcm';
import { webpush } from './webpush';

/** The push channel's providers; each serves the one address platform it is named after. */
export const pushProviders: ProviderDefinition[] = [apns, fcm, webpush];
