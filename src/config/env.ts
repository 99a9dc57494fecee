import type { Channel } from '../domain/channels';
import type { Recipient } from '../durable/recipient';
import type { QueueMessage } from '../queue/messages';

/** The Worker's bindings, vars and secrets (see wrangler.toml and the README's tables). */
export interface Env {
  DB: D1Database;
  TEMPLATES: R2Bucket;
  RECIPIENT: DurableObjectNamespace<Recipient>;
  QUEUE_EMAIL: Queue<QueueMessage>;
  QUEUE_SMS: Queue<QueueMessage>;
  QUEUE_PUSH: Queue<QueueMessage>;
  QUEUE_CHAT: Queue<QueueMessage>;
  QUEUE_WEBHOOK: Queue<QueueMessage>;
  DLQ_EMAIL: Queue<QueueMessage>;
  DLQ_SMS: Queue<QueueMessage>;
  DLQ_PUSH: Queue<QueueMessage>;
  DLQ_CHAT: Queue<QueueMessage>;
  DLQ_WEBHOOK: Queue<QueueMessage>;
  ANALYTICS?: AnalyticsEngineDataset;
  /** Per-API-key request limit (`[[ratelimits]]`); absent = no limit. */
  API_RATE_LIMITER?: RateLimit;

  /** `development` enables loopback URLs and the sandbox outbox API; `production` by default. */
  ENVIRONMENT?: string;
  /** Bootstrap admin key (secret). */
  ADMIN_API_KEY?: string;
  /** Public origin of this deployment, for callback, tracking and unsubscribe links. */
  PUBLIC_BASE_URL?: string;
  /** HMAC key for unsubscribe and tracking tokens (secret). */
  SIGNING_SECRET?: string;
  EMAIL_PROVIDERS?: string;
  SMS_PROVIDERS?: string;
  PUSH_PROVIDERS?: string;
  CHAT_PROVIDERS?: string;
  WEBHOOK_PROVIDERS?: string;
  ALERT_WEBHOOK_URL?: string;
  /** Alert when the oldest due delivery has waited longer than this (seconds, default 300). */
  BACKLOG_ALERT_SECONDS?: string;
  /** `kid:base64key[,kid:base64key…]`: the first encrypts, all decrypt (secret). */
  DATA_ENCRYPTION_KEY?: string;
  /** Key for equality lookups on personal data (suppressed addresses); never rotate it casually (secret). */
  BLIND_INDEX_KEY?: string;
  [key: string]: unknown;
}

export function queueFor(env: Env, channel: Channel): Queue<QueueMessage> {
  switch (channel) {
    case 'email':
      return env.QUEUE_EMAIL;
    case 'sms':
      return env.QUEUE_SMS;
    case 'push':
      return env.QUEUE_PUSH;
    case 'chat':
      return env.QUEUE_CHAT;
    case 'webhook':
      return env.QUEUE_WEBHOOK;
  }
}

export function deadLetterQueueFor(env: Env, channel: Channel): Queue<QueueMessage> {
  switch (channel) {
    case 'email':
      return env.DLQ_EMAIL;
    case 'sms':
      return env.DLQ_SMS;
    case 'push':
      return env.DLQ_PUSH;
    case 'chat':
      return env.DLQ_CHAT;
    case 'webhook':
      return env.DLQ_WEBHOOK;
  }
}

export const isDevelopment = (env: Env): boolean => env.ENVIRONMENT === 'development';
