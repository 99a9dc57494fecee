import type { DeviceToken, ExternalChannel, InlineRecipient } from '../../domain/contact';
import type { TopicRecipient } from '../../domain/topics';
import type { NotificationInput } from '../ingest/accept';

/*
 * Novu's trigger, as Novu's own SDK (@novu/api) sends it, turned into Herald's notification. Pure:
 * no I/O, so every rule of the mapping is here and nowhere else. The table in the README ("Coming
 * from Novu") is this file in words.
 */

/** A Novu channel credential on a subscriber (`channels[]`): the kinds Herald can deliver to. */
export interface NovuChannel {
  providerId: string;
  integrationIdentifier?: string;
  credentials: { webhookUrl?: string; deviceTokens?: string[] };
}

/** Novu's SubscriberPayloadDto: a subscriber inline in `to` (or `actor`). */
export interface NovuSubscriber {
  subscriberId: string;
  email?: string | null;
  phone?: string | null;
  locale?: string | null;
  timezone?: string | null;
  firstName?: string | null;
  lastName?: string | null;
  avatar?: string | null;
  data?: Record<string, unknown> | null;
  channels?: NovuChannel[];
}

/** Novu's TopicPayloadDto: everyone subscribed to the topic, but `exclude`. */
export interface NovuTopicRecipient {
  type: 'Topic';
  topicKey: string;
  exclude?: string[];
}

export type NovuRecipient = string | NovuSubscriber | NovuTopicRecipient;

/** Novu's TriggerEventRequestDto as it travels (the SDK's `workflowId` is sent as `name`). */
export interface NovuTrigger {
  name: string;
  to: NovuRecipient | NovuRecipient[];
  payload?: Record<string, unknown>;
  transactionId?: string;
  actor?: string | NovuSubscriber;
}

/** Every notification that came through the Novu-compatible routes carries this source. */
export const NOVU_SOURCE = 'novu';

/** Novu chat providers Herald has a channel for: their `credentials.webhookUrl` is the address. */
const CHAT_PLATFORMS: Readonly<Record<string, ExternalChannel['platform']>> = {
  slack: 'slack',
  discord: 'discord',
  msteams: 'teams',
};

/** Novu push providers whose `credentials.deviceTokens` are Herald's device tokens. */
const PUSH_PLATFORMS: Readonly<Record<string, DeviceToken['platform']>> = { fcm: 'fcm', apns: 'apns' };

/** Novu writes locales as `en_US` as often as `en-US`; Herald keeps BCP 47 (`en-US`). */
export function bcp47(locale: string): string {
  return locale.replace(/_/g, '-');
}

/** The address fields Herald can hold, taken from a Novu subscriber; null and absent are alike. */
function addressFields(subscriber: NovuSubscriber): Omit<InlineRecipient, 'userId'> {
  const deviceTokens: DeviceToken[] = [];
  const externalChannels: ExternalChannel[] = [];
  for (const channel of subscriber.channels ?? []) {
    const push = PUSH_PLATFORMS[channel.providerId];
    const chat = CHAT_PLATFORMS[channel.providerId];
    if (push) {
      for (const token of channel.credentials.deviceTokens ?? [])
        deviceTokens.push({ deviceToken: token, platform: push });
    } else if (chat && channel.credentials.webhookUrl) {
      externalChannels.push({ platform: chat, url: channel.credentials.webhookUrl, status: true });
    }
  }
  return {
    ...(subscriber.email ? { email: subscriber.email } : {}),
    ...(subscriber.phone ? { phone: subscriber.phone } : {}),
    ...(subscriber.locale ? { locale: bcp47(subscriber.locale) } : {}),
    ...(subscriber.timezone ? { timezone: subscriber.timezone } : {}),
    ...(deviceTokens.length > 0 ? { deviceTokens } : {}),
    ...(externalChannels.length > 0 ? { externalChannels } : {}),
  };
}

/** True for Novu's topic recipient (`{ type: "Topic", topicKey }`). */
export function isTopicRecipient(recipient: NovuRecipient): recipient is NovuTopicRecipient {
  return typeof recipient === 'object' && 'topicKey' in recipient;
}

/**
 * One Novu recipient as Herald's: a subscriber id stays an id; a subscriber object with address
 * fields becomes an inline recipient (its fields override the stored contact for this
 * notification only); a topic becomes `{ topic, exclude }`. Names, avatar and `data` are not
 * addresses: Herald keeps none of them.
 */
export function toRecipient(recipient: NovuRecipient): NotificationInput['recipients'][number] {
  if (typeof recipient === 'string') return recipient;
  if (isTopicRecipient(recipient)) {
    const topic: TopicRecipient = { topic: recipient.topicKey };
    return recipient.exclude?.length ? { ...topic, exclude: recipient.exclude } : topic;
  }
  const fields = addressFields(recipient);
  return Object.keys(fields).length === 0
    ? recipient.subscriberId
    : { userId: recipient.subscriberId, ...fields };
}

/** Novu's `to`, always as a list. */
export const recipientsOf = (to: NovuTrigger['to']): NovuRecipient[] => (Array.isArray(to) ? to : [to]);

/**
 * The notification a Novu trigger asks for: `name` is the type, `payload` the data,
 * `transactionId` the notification id (Herald's idempotency key), `actor` the actor.
 */
export function toNotificationInput(trigger: NovuTrigger): NotificationInput {
  const actor = typeof trigger.actor === 'string' ? trigger.actor : trigger.actor?.subscriberId;
  return {
    ...(trigger.transactionId !== undefined ? { id: trigger.transactionId } : {}),
    type: trigger.name,
    source: NOVU_SOURCE,
    recipients: recipientsOf(trigger.to).map(toRecipient),
    ...(trigger.payload !== undefined ? { data: trigger.payload } : {}),
    ...(actor !== undefined ? { actor } : {}),
  };
}

/** Herald's names for a recipient's fields, as a Novu subscriber names them. */
const RECIPIENT_FIELDS: Readonly<Record<string, string>> = {
  userId: 'subscriberId',
  deviceTokens: 'channels',
  externalChannels: 'channels',
  topic: 'topicKey',
};

/**
 * A Herald field path of a mapped notification (`['recipients', 0, 'email']`) as the Novu body
 * names it (`['to', 0, 'email']`, or `['to', 'email']` when `to` was not a list), so a 422 points
 * at what the caller sent.
 */
export function novuPath(path: readonly PropertyKey[], toIsList: boolean): PropertyKey[] {
  const [head, ...rest] = path;
  if (head === 'type') return ['name', ...rest];
  if (head === 'id') return ['transactionId', ...rest];
  if (head === 'data') return ['payload', ...rest];
  if (head !== 'recipients') return [...path];
  const [index, field, ...more] = rest;
  const at: PropertyKey[] = toIsList && index !== undefined ? ['to', index] : ['to'];
  if (field === undefined) return at;
  const renamed = typeof field === 'string' ? RECIPIENT_FIELDS[field] : undefined;
  return renamed ? [...at, renamed] : [...at, field, ...more];
}

/** `recipients[2].topic` as the path `['recipients', 2, 'topic']`. */
function pathOf(field: string): PropertyKey[] {
  return [...field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map(([, name, index]) =>
    index !== undefined ? Number(index) : (name as string),
  );
}

/** {@link novuPath} for a field Herald wrote as text (an error's `details`), written back as text. */
export function novuFieldName(field: string, toIsList: boolean): string {
  return novuPath(pathOf(field), toIsList)
    .map((step, i) => (typeof step === 'number' ? `[${step}]` : i === 0 ? String(step) : `.${String(step)}`))
    .join('');
}
