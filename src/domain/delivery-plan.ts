import type { Address } from './address';
import { CHAT_PLATFORMS, type Channel, type ChatPlatform } from './channels';
import type { DeviceToken, ExternalChannel } from './contact';
import type { DeliveryStatus } from './status';

/** A recipient as the router sees it: the contact's fields merged with any inline ones. */
export interface ResolvedRecipient {
  userId: string | null;
  known: boolean;
  email: string | null;
  phone: string | null;
  deviceTokens: DeviceToken[];
  externalChannels: ExternalChannel[];
  smsOptedOut: boolean;
}

export interface PlannedDelivery {
  userId: string | null;
  channel: Channel;
  address: Address | null;
  status: Extract<DeliveryStatus, 'created' | 'skipped' | 'suppressed'>;
  reason?: string;
}

/** Every address a recipient has on one channel (one delivery each). */
export function addressesFor(recipient: ResolvedRecipient, channel: Channel): Address[] {
  switch (channel) {
    case 'email':
      return recipient.email ? [{ channel, email: recipient.email }] : [];
    case 'sms':
      return recipient.phone ? [{ channel, phone: recipient.phone }] : [];
    case 'push':
      return recipient.deviceTokens.map((t) => ({
        channel,
        platform: t.platform,
        deviceToken: t.deviceToken,
      }));
    case 'chat':
      return recipient.externalChannels
        .filter((c) => c.status && (CHAT_PLATFORMS as readonly string[]).includes(c.platform))
        .map((c) => ({
          channel,
          platform: c.platform as ChatPlatform,
          ...(c.url ? { url: c.url } : {}),
          ...(c.chatId ? { chatId: c.chatId } : {}),
        }));
    case 'webhook':
      return recipient.externalChannels
        .filter((c) => c.status && c.platform === 'webhook' && c.url)
        .map((c) => ({ channel, url: c.url as string, ...(c.secret ? { secret: c.secret } : {}) }));
    case 'inapp':
      return recipient.userId ? [{ channel, userId: recipient.userId }] : [];
  }
}

/**
 * Decides the deliveries of one recipient. `channels` is the producer's list narrowed to the
 * channels that have a template (or all templated channels when the producer named none).
 * A channel the producer named but the recipient has no address for is `skipped` with a reason;
 * a recipient with no usable address at all gets one `skipped` delivery per candidate channel,
 * so the history always says why nothing was sent.
 */
export function planDeliveries(
  recipient: ResolvedRecipient,
  channels: readonly Channel[],
  explicit: boolean,
): PlannedDelivery[] {
  const planned: PlannedDelivery[] = [];
  const missing: PlannedDelivery[] = [];
  for (const channel of channels) {
    const addresses = addressesFor(recipient, channel);
    if (addresses.length === 0) {
      missing.push({
        userId: recipient.userId,
        channel,
        address: null,
        status: 'skipped',
        reason:
          recipient.known || !recipient.userId
            ? `no ${describeAddress(channel)} for this recipient`
            : 'unknown recipient',
      });
      continue;
    }
    for (const address of addresses) {
      if (channel === 'sms' && recipient.smsOptedOut) {
        planned.push({
          userId: recipient.userId,
          channel,
          address,
          status: 'suppressed',
          reason: 'recipient opted out of SMS (STOP)',
        });
      } else {
        planned.push({ userId: recipient.userId, channel, address, status: 'created' });
      }
    }
  }
  if (planned.length === 0 || explicit) return [...planned, ...missing];
  return planned;
}

function describeAddress(channel: Channel): string {
  switch (channel) {
    case 'email':
      return 'email address';
    case 'sms':
      return 'phone number';
    case 'push':
      return 'device token';
    case 'chat':
      return 'active chat channel';
    case 'webhook':
      return 'active webhook endpoint';
    case 'inapp':
      return 'user id (an inbox belongs to a user)';
  }
}
