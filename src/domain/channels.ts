/** The delivery channels Herald routes to; each has its own queue and dead-letter queue. */
export const CHANNELS = ['email', 'sms', 'push', 'chat', 'webhook', 'inapp'] as const;
export type Channel = (typeof CHANNELS)[number];

export const PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const PUSH_PLATFORMS = ['apns', 'fcm', 'webpush'] as const;
export type PushPlatform = (typeof PUSH_PLATFORMS)[number];

export const EXTERNAL_PLATFORMS = ['slack', 'discord', 'teams', 'telegram', 'webhook'] as const;
export type ExternalPlatform = (typeof EXTERNAL_PLATFORMS)[number];

/** External platforms delivered on the `chat` channel; `webhook` has a channel of its own. */
export const CHAT_PLATFORMS = ['slack', 'discord', 'teams', 'telegram'] as const;
export type ChatPlatform = (typeof CHAT_PLATFORMS)[number];

export function isChannel(value: string): value is Channel {
  return (CHANNELS as readonly string[]).includes(value);
}

/**
 * The channels whose real providers take an idempotency key (Resend `Idempotency-Key`, APNs
 * `apns-collapse-id`, Web Push `Topic`, Standard Webhooks `webhook-id`), and the in-app inbox,
 * which appends once per delivery id: a repeat of the same delivery is harmless there.
 */
export const IDEMPOTENT_CHANNELS: ReadonlySet<Channel> = new Set(['email', 'push', 'webhook', 'inapp']);
