import { type Channel, isChannel } from '../../domain/channels';
import type { InlineRecipient } from '../../domain/contact';
import { invalidField } from '../../domain/errors';
import type { NotificationInput } from './accept';

/** The seed's EventBridge-style event, as validated by the API. */
export interface EventBridgeEvent {
  id: string;
  source: string;
  'detail-type': string | string[];
  detail: Record<string, unknown>;
}

/**
 * Turns an EventBridge-style event into notifications. Each `detail-type` names
 * `<type>_<channel>` (`payment_notification_sms`); detail-types of one type become one
 * notification over their channels. `detail.userId` (or `detail.recipients`) names the
 * recipients; the rest of `detail` is the template data.
 */
export function fromEventBridge(event: EventBridgeEvent): NotificationInput[] {
  const detailTypes = Array.isArray(event['detail-type']) ? event['detail-type'] : [event['detail-type']];
  const byType = new Map<string, Channel[]>();
  detailTypes.forEach((detailType, index) => {
    const cut = detailType.lastIndexOf('_');
    const type = detailType.slice(0, cut);
    const channel = detailType.slice(cut + 1);
    if (cut <= 0 || !isChannel(channel) || !/^[a-z0-9][a-z0-9_-]*$/.test(type)) {
      throw invalidField(`detail-type[${index}]`, 'must be <type>_<channel>, e.g. payment_notification_sms');
    }
    const channels = byType.get(type) ?? [];
    if (!channels.includes(channel)) channels.push(channel);
    byType.set(type, channels);
  });

  const { userId, recipients, ...data } = event.detail;
  const resolved = recipientsOf(userId, recipients);
  const many = byType.size > 1;
  return [...byType].map(([type, channels]) => ({
    id: many ? `${event.id}:${type}` : event.id,
    type,
    source: event.source,
    recipients: resolved,
    channels,
    data,
  }));
}

function recipientsOf(userId: unknown, recipients: unknown): (string | InlineRecipient)[] {
  if (typeof userId === 'string' && userId.length > 0) return [userId];
  if (Array.isArray(recipients) && recipients.length > 0) return recipients as (string | InlineRecipient)[];
  throw invalidField('detail.userId', 'the event needs detail.userId or detail.recipients');
}
