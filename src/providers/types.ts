import type { Address } from '../domain/address';
import type { Channel, Priority } from '../domain/channels';
import type { RenderedMessage } from '../domain/message';

/** What a provider is asked to send: one delivery, already rendered. */
export interface SendRequest<A extends Address = Address> {
  /** Herald's delivery id; passed as the idempotency key where the provider takes one. */
  deliveryId: string;
  notificationId: string;
  type: string;
  priority: Priority;
  address: A;
  message: RenderedMessage;
}

/**
 * The one result contract every provider returns. Retries live in the queue, never inside a
 * provider: a provider answers once and says what kind of answer it got.
 */
export type SendResult =
  | { kind: 'sent'; providerMessageId?: string }
  | { kind: 'retryable'; reason: string; retryAfterSeconds?: number }
  | { kind: 'permanent'; reason: string; invalidAddress?: boolean; optOut?: boolean };

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
