import type { Address } from '../domain/address';
import type { Channel, Priority } from '../domain/channels';
import type { RenderedMessage } from '../domain/message';

/** What a provider is asked to send: one delivery, already rendered. */
export interface SendRequest<A extends Address = Address> {
  /** Herald's delivery id; passed as the idempotency key where the provider takes one. */
  deliveryId: string;
  notificationId: string;
  type: string;
  /** The type's category (`type.json`), for channels that show it (in-app). */
  category?: string;
  priority: Priority;
  address: A;
  message: RenderedMessage;
}

/**
 * The one result contract every provider returns. Retries live in the queue, never inside a
 * provider: a provider answers once and says what kind of answer it got.
 */
export type SendResult =
  /** `delivered`: the send itself put it in front of the user (an in-app inbox append). */
  | { kind: 'sent'; providerMessageId?: string; delivered?: boolean }
  | { kind: 'retryable'; reason: string; retryAfterSeconds?: number; code?: string }
  /**
   * The request left but no answer came (a timeout or a reset after sending): the provider may
   * have delivered it. Never a failover to another provider, which could deliver it twice.
   */
  | { kind: 'unknown'; reason: string }
  | {
      kind: 'permanent';
      reason: string;
      /** The provider's own error code (e.g. `BadDeviceToken`, `21610`), for history and alerts. */
      code?: string;
      /** The address is proven dead: the consumer removes the token or disables the channel. */
      invalidAddress?: boolean;
      /** The recipient opted out at the provider (e.g. Twilio 21610 STOP): the consumer opts them out. */
      optOut?: boolean;
      /** The provider's configuration is wrong (bad credentials, unknown topic): alert an operator. */
      configError?: boolean;
    };

/** The injected outside world of a provider, so tests can assert the exact request. */
export interface ProviderDeps {
  fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /** Milliseconds since the epoch; injected so JWT caching is testable. */
  now: () => number;
}

export interface Provider<A extends Address = Address> {
  /** Stable name used in `<CHANNEL>_PROVIDERS` and recorded on the delivery. */
  readonly name: string;
  readonly channel: Channel;
  /** For push/chat/webhook: the address platforms this provider serves (an apns token goes to APNs). */
  readonly platforms?: readonly string[];
  /**
   * Whether the provider documents an idempotency key Herald sends with every request (Resend
   * `Idempotency-Key`, Standard Webhooks `webhook-id`, APNs `apns-collapse-id`, Web Push `Topic`),
   * so that a repeat of the same delivery is harmless.
   */
  readonly idempotent?: boolean;
  send(request: SendRequest<A>): Promise<SendResult>;
}

/** Thrown when a provider listed in the configuration lacks a credential; names the variable only. */
export class MissingCredentialsError extends Error {
  constructor(
    readonly provider: string,
    readonly variables: string[],
  ) {
    super(`provider ${provider} is listed but ${variables.join(', ')} is not set`);
    this.name = 'MissingCredentialsError';
  }
}

export const defaultDeps = (): ProviderDeps => ({
  fetch: (input, init) => fetch(input, init),
  now: () => Date.now(),
});

/** Vars, secrets and bindings a provider may read; values are strings except bindings. */
export type ProviderEnv = Record<string, unknown>;

/**
 * A provider's limits as data, from its documentation (each module cites its source), plus how
 * long Herald waits for it. The code reads timeouts, size checks and truncations from here.
 */
export interface ProviderLimits {
  /** How long Herald waits for one answer; a slower one is a retryable timeout. */
  readonly timeoutMs?: number;
  /** The largest request (or message) the provider accepts, in bytes; absent when it documents none. */
  readonly maxBodyBytes?: number;
  /** Recipients the provider accepts in one request (Herald always sends to one). */
  readonly recipientsPerRequest: number;
  /** The sustained rate the provider documents, when it publishes one. */
  readonly documentedRatePerSecond?: number;
  /** Documented lengths of single fields, in the unit the provider counts (characters or bytes). */
  readonly fields?: Readonly<Record<string, number>>;
  /** How much of an answer Herald reads to classify it, in characters (4096 when absent). */
  readonly answerChars?: number;
}

/**
 * How the registry knows a provider: its name, what it serves, its limits, and how to build it
 * from the Worker's vars and secrets. `create` throws MissingCredentialsError when a credential
 * is absent. The registry keeps the built instance for the isolate's life, so token caches live
 * inside it.
 */
export interface ProviderDefinition {
  readonly name: string;
  readonly channel: Channel;
  readonly platforms?: readonly string[];
  readonly limits: ProviderLimits;
  /** Whether every request carries the provider's documented idempotency key; `create` copies it onto the instance. */
  readonly idempotent?: boolean;
  create(env: ProviderEnv, deps: ProviderDeps): Provider;
}
