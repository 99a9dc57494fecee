import { chatProviders } from './chat';
import { emailProviders } from './email';
import { pushProviders } from './push';
import { smsProviders } from './sms';
import type { ProviderDefinition } from './types';
import { webhookProviders } from './webhook';

/** Every real provider Herald ships, by channel. `sandbox` is built in by the registry. */
export const allProviders: readonly ProviderDefinition[] = [
  ...emailProviders,
  ...smsProviders,
  ...pushProviders,
  ...chatProviders,
  ...webhookProviders,
];
