// SendGrid v3 Mail Send: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
import { type HttpAnswer, type HttpCall, secondsHeader, stringField } from '../http-call';
import { classOfStatus, resultOfClass, sent, shortReason } from '../results';
import type { ProviderEnv, SendRequest, SendResult } from '../types';
import { type KeyedEmailConfig, readKeyedEmailConfig } from './keyed-config';
import { mailboxObject } from './mailbox';
import { EMAIL_TIMEOUT_MS, httpEmailProvider, MB, requireEmailJob, USER_AGENT } from './shared';

/**
 * SendGrid's Mail Send limits (https://www.twilio.com/docs/sendgrid/api-reference/mail-send):
 * 30 MB per email including attachments, 1,000 recipients per request. Mail Send has no
 * published rate limit.
 */
export const SENDGRID_LIMITS = {
  timeoutMs: EMAIL_TIMEOUT_MS,
  maxBodyBytes: 30 * MB,
  recipientsPerRequest: 1000,
};

/** SendGrid settings: `SENDGRID_API_KEY`, optional `SENDGRID_BASE_URL` (EU: https://api.eu.sendgrid.com). */
export type SendgridConfig = KeyedEmailConfig;

/** Reads the SendGrid config; throws MissingCredentialsError naming absent vars. */
export function sendgridConfigFromEnv(env: ProviderEnv): SendgridConfig {
  return readKeyedEmailConfig(
    env,
    'sendgrid',
    'SENDGRID_API_KEY',
    'SENDGRID_BASE_URL',
    'https://api.sendgrid.com',
  );
}

/**
 * Builds `POST /v3/mail/send`. SendGrid requires `text/plain` before `text/html` in `content`;
 * `custom_args.delivery_id` comes back on every Event Webhook event for this message.
 */
export function buildSendgridRequest(config: SendgridConfig, request: SendRequest): HttpCall {
  const job = requireEmailJob(request);
  const content = [
    ...(job.text ? [{ type: 'text/plain', value: job.text }] : []),
    ...(job.html ? [{ type: 'text/html', value: job.html }] : []),
  ];
  const body = {
    personalizations: [{ to: [{ email: job.to }] }],
    from: mailboxObject(config.sender.from),
    ...(config.sender.replyTo ? { reply_to: mailboxObject(config.sender.replyTo) } : {}),
    subject: job.subject,
    content,
    ...(job.headers.length > 0 ? { headers: Object.fromEntries(job.headers) } : {}),
    custom_args: { delivery_id: request.deliveryId },
  };
  return {
    url: `${config.baseUrl}/v3/mail/send`,
    method: 'POST',
    headers: {
      Authorization: `Bearer ${config.apiKey}`,
      'Content-Type': 'application/json',
      'User-Agent': USER_AGENT,
    },
    body: JSON.stringify(body),
  };
}

/** `{"errors":[{"message","field","help"}]}`: the first error names the problem well enough. */
function firstError(json: unknown): { message?: string; field?: string } {
  if (typeof json !== 'object' || json === null) return {};
  const errors = (json as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || errors.length === 0) return {};
  const message = stringField(errors[0], 'message');
  const field = stringField(errors[0], 'field');
  return { ...(message ? { message } : {}), ...(field ? { field } : {}) };
}

/** Seconds until `X-RateLimit-Reset` (a Unix timestamp), when present. */
function rateLimitResetSeconds(headers: Headers, nowMs: number): number | undefined {
  const resetAt = secondsHeader(headers, 'x-ratelimit-reset');
  return resetAt === undefined ? undefined : Math.max(0, Math.ceil(resetAt - nowMs / 1000));
}

/**
 * Maps a SendGrid answer to a SendResult: 202 is the only success Mail Send documents. 401 bad
 * key, 403 missing permission or unverified sender identity, 404 wrong base URL; 400 invalid
 * request and 413 payload too large cannot succeed when sent again.
 */
export function classifySendgridAnswer(answer: HttpAnswer, nowMs: number): SendResult {
  if (answer.ok) return sent(answer.headers.get('x-message-id') ?? undefined);
  const { status } = answer;
  const error = firstError(answer.json);
  const reason = shortReason(`sendgrid ${status}`, error.field, error.message ?? answer.body);
  const wait =
    answer.retryAfterSeconds ?? (status === 429 ? rateLimitResetSeconds(answer.headers, nowMs) : undefined);
  return resultOfClass(classOfStatus(status, { 404: 'configError' }), reason, `http_${status}`, wait);
}

/** The SendGrid provider definition. */
export const sendgrid = httpEmailProvider({
  name: 'sendgrid',
  limits: SENDGRID_LIMITS,
  configFromEnv: sendgridConfigFromEnv,
  build: buildSendgridRequest,
  classify: classifySendgridAnswer,
});
