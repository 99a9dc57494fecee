import type { ProviderDefinition } from '../types';
import { twilio } from './twilio';
import { vonage } from './vonage';

/** Providers of the sms channel, in default failover order. */
export const smsProviders: ProviderDefinition[] = [twilio, vonage];
