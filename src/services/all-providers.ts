import { chatProviders } from '../providers/chat';
import { emailProviders } from '../providers/email';
import { pushProviders } from '../providers/push';
import { smsProviders } from '../providers/sms';
import type { ProviderDefinition } from '../providers/types';
import { webhookProviders } from '../providers/webhook';

/** Every real provider Herald ships, by channel. `sandbox` is built in by the registry. */
export const allProviders: readonly ProviderDefinition[] = [
  ...emailProviders,
  ...smsProviders,
  ...pushProviders,
  ...chatProviders,
  ...webhookProviders,
];
