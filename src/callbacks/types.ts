/** What a provider's delivery callback says happened to a message, in Herald's words. */
export type CallbackStatus =
  | 'delivered'
  | 'bounced'
  | 'complained'
  | 'failed'
  | 'opened'
  | 'clicked'
  | 'unsubscribed';

/** One status change reported by a provider callback (a request may carry several). */
export interface CallbackEvent {
  /** Herald's delivery id when the provider echoes it (custom_args, v:, Metadata, client-ref, tags) */
  deliveryId?: string;
  /** The provider's message id (Twilio MessageSid, Resend email_id, ...), to look the delivery up otherwise */
  providerMessageId?: string;
  status: CallbackStatus;
  /** Short and built from provider codes only: never an address, a name or free SMTP text. */
  reason?: string;
  /** true when the address should be suppressed for the future: hard bounce or complaint */
  suppressAddress?: boolean;
  /** ISO 8601, when the provider says the event happened. */
  occurredAt?: string;
}

/** Remembers keys (tokens, nonces) for a while so a replayed callback is refused. */
export interface ReplayGuard {
  /** true if already seen (then refuse); otherwise records the key for `ttlSeconds`. */
  seen(key: string, ttlSeconds: number): Promise<boolean>;
}

/** The raw callback request, exactly as received: the body is never re-serialised before verifying. */
export interface CallbackRequest {
  /** The full URL the provider called, with query string. */
  url: string;
  method: string;
  headers: Headers;
  body: string;
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/**
 * The one refusal that is not the sender's fault: the replay store could not be asked. Answer it
 * with a 5xx so the provider retries; answer every other refusal with 401.
 */
export const REPLAY_CHECK_UNAVAILABLE = 'replay check unavailable';

/**
 * One provider's callback protocol: read its secret, verify a request, turn a verified body into
 * events. `verify` never throws; `parse` never throws and returns [] for anything it cannot read.
 * Declared with method syntax so handlers with different config types share one registry type.
 */
export interface CallbackHandler<C> {
  /** The config, or null when the provider's callback secret is not configured. */
  configFromEnv(env: Record<string, unknown>): C | null;
  verify(request: CallbackRequest, config: C, nowMs: number, replay?: ReplayGuard): Promise<VerifyResult>;
  parse(body: string, headers: Headers): CallbackEvent[];
}

/**
 * A callback secret is set but unusable (malformed, or half of a pair). Thrown by
 * `configFromEnv` so a typo fails loudly instead of refusing every callback; names the variable only.
 */
export class CallbackConfigError extends Error {
  constructor(
    readonly provider: string,
    readonly variable: string,
    problem: string,
  ) {
    super(`${provider} callback: ${variable} ${problem}`);
    this.name = 'CallbackConfigError';
  }
}
