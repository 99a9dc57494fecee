// What every email API shares: the local checks of a delivery, the family's timeout and user
// agent, and the HTTP provider factory (refuse what cannot be an email, build, call, classify).
import type { RenderedMessage } from '../../domain/message';
import type { CallLimits, HttpAnswer, HttpCall } from '../http-call';
import { httpProvider } from '../http-provider';
import type { ProviderDefinition, ProviderEnv, SendRequest, SendResult } from '../types';

/** Sent as `User-Agent` to every email API (Resend rejects requests without one). */
export const USER_AGENT = 'herald/0.1';

/** Herald's wait for an email API; a slower answer is a retryable timeout. */
export const EMAIL_TIMEOUT_MS = 10_000;

/** Bytes in a megabyte as the email providers count their size limits. */
export const MB = 1024 * 1024;

/** An email delivery that passed the local checks: one recipient and a sendable message. */
export interface EmailJob {
  to: string;
  subject: string;
  html?: string;
  text?: string;
  headers: [string, string][];
}

type Refusal = Extract<SendResult, { kind: 'permanent' }>;

/**
 * Checks what no provider can fix: the address is an email address and the rendered message has
 * a subject and a body. Returns the job, or the permanent result to record without a network call.
 */
export function toEmailJob(request: SendRequest): EmailJob | Refusal {
  const address = request.address;
  if (address.channel !== 'email' || !address.email) {
    return { kind: 'permanent', reason: 'address is not an email address', code: 'invalid_address' };
  }
  const message: RenderedMessage = request.message;
  if (!message.subject) {
    return { kind: 'permanent', reason: 'rendered email has no subject', code: 'invalid_message' };
  }
  if (!message.html && !message.text) {
    return { kind: 'permanent', reason: 'rendered email has no html or text body', code: 'invalid_message' };
  }
  return {
    to: address.email,
    subject: message.subject,
    ...(message.html ? { html: message.html } : {}),
    ...(message.text ? { text: message.text } : {}),
    headers: Object.entries(message.headers ?? {}),
  };
}

/** True when `toEmailJob` refused the delivery. */
export function isRefused(job: EmailJob | SendResult): job is Refusal {
  return 'kind' in job;
}

/** Like `toEmailJob`, for the pure builders: a refused delivery is a caller bug there. */
export function requireEmailJob(request: SendRequest): EmailJob {
  const job = toEmailJob(request);
  if (isRefused(job)) throw new TypeError(job.reason);
  return job;
}

/** How one HTTP email API is configured, called and understood. */
export interface HttpEmailApi<C> {
  name: string;
  limits: CallLimits;
  /** The request carries a documented idempotency key (Resend's `Idempotency-Key`). */
  idempotent?: boolean;
  configFromEnv(env: ProviderEnv): C;
  /** Builds the request; it may be a signed `Request`, so async signing (SigV4) fits. */
  build(config: C, request: SendRequest, nowMs: number): HttpCall | Request | Promise<HttpCall | Request>;
  classify(answer: HttpAnswer, nowMs: number): SendResult;
}

/** The provider definition of an HTTP email API. */
export function httpEmailProvider<C>(api: HttpEmailApi<C>): ProviderDefinition {
  return httpProvider<C, SendRequest['address']>({
    name: api.name,
    channel: 'email',
    limits: api.limits,
    ...(api.idempotent ? { idempotent: true } : {}),
    configFromEnv: api.configFromEnv,
    steps: (config, deps) => ({
      build(request) {
        const job = toEmailJob(request);
        return isRefused(job) ? job : api.build(config, request, deps.now());
      },
      classify: (answer) => api.classify(answer, deps.now()),
    }),
  });
}
