import type { ProviderDefinition } from '../types';
import { webhook } from './webhook';

export { checkWebhookUrl, type WebhookUrlCheck, type WebhookUrlPolicy } from '../../lib/ssrf-guard';

/** Providers of the webhook channel. */
export const webhookProviders: ProviderDefinition[] = [webhook];
