// Resend Send Email API: https://resend.com/docs/api-reference/emails/send-email (errors: /docs/api-reference/errors)
import { type HttpAnswer, type HttpCall, secondsHeader, stringField } from '../http-call';
import { classOfStatus, type ErrorClass, resultOfClass, sent, shortReason } from '../results';
import type { ProviderEnv, SendRequest, SendResult } from '../types';
import { type KeyedEmailConfig, readKeyedEmailConfig } from './keyed-config';
import { formatMailbox } from './mailbox';
import { EMAIL_TIMEOUT_MS, httpEmailProvider, MB, requireEmailJob, USER_AGENT } from './shared';

/**
 * Resend's limits: 40 MB per email after base64 and 50 recipients
 * (https://resend.com/docs/api-reference/emails/send-email), 5 requests per second per team by
 * default (https://resend.com/docs/api-reference/rate-limit).
 */
export const RESEND_LIMITS = {
  timeoutMs: EMAIL_TIMEOUT_MS,
  maxBodyBytes: 40 * MB,
  recipientsPerRequest: 50,
  documentedRatePerSecond: 5,
};

/** Resend settings: `RESEND_API_KEY`, optional `RESEND_BASE_URL`, and the shared sender. */
export type ResendConfig = KeyedEmailConfig;

/** Reads the Resend config; throws MissingCredentialsError naming absent vars. */
export function resendConfigFromEnv(env: ProviderEnv): ResendConfig {
  return readKeyedEmailConfig(env, 'resend', 'RESEND_API_KEY', 'RESEND_BASE_URL', 'https://api.resend.com');
}

/**
 * Builds `POST /emails`. The delivery id is the `Idempotency-Key`, so a redelivered queue message
 * within Resend's 24 h window gets the original answer instead of a second email. The id is also
 * the `delivery_id` tag (tag values allow ASCII letters, digits, `_` and `-`: ids use only those).
 */
export function buildResendRequest(config: ResendConfig, request: SendRequest): HttpCall {
  const job = requireEmailJob(request);
  const body = {
    from: formatMailbox(config.sender.from),
    to: [job.to],
    subject: job.subject,
    ...(job.html ? { html: job.html } : {}),
    ...(job.text ? { text: job.text } : {}),
    ...(job.headers.length > 0 ? { headers: Object.fromEntries(job.headers) } : {}),
    ...(config.sender.replyTo ? { reply_to: formatMailbox(config.sender.replyTo) } : {}),
    // Resend echoes tags in every webhook event: callbacks find the delivery without a lookup.
    tags: [{ name: 'delivery_id', value: request.deliveryId }],
  };
  return {
    url: `${config.baseUrl}/emails`,
    method: 'POST',
    headers: {
      Authorization: `Bearer ${config.apiKey}`,
      'Content-Type': 'application/json',
      'Idempotency-Key': request.deliveryId,
      'User-Agent': USER_AGENT,
    },
    body: JSON.stringify(body),
  };
}

/** 422 names that say the sender or account is misconfigured rather than this message. */
const CONFIG_ERRORS_422 = new Set(['invalid_from_address', 'invalid_access', 'invalid_region']);

function resendClass(status: number, name: string | undefined, message: string): ErrorClass {
  // A concurrent request with the same key is still running: its answer will come, so retry.
  if (status === 409) return name === 'concurrent_idempotent_requests' ? 'retryable' : 'permanent';
  if (status === 400 && /api key/i.test(message)) return 'configError';
  if (status === 422 && name && CONFIG_ERRORS_422.has(name)) return 'configError';
  // 401/403 bad key, unverified domain, test-mode restriction; 404/405 a wrong base URL.
  return classOfStatus(status, { 404: 'configError', 405: 'configError' });
}

/** Maps a Resend answer to a SendResult per the documented error table. */
export function classifyResendAnswer(answer: HttpAnswer): SendResult {
  if (answer.ok) return sent(stringField(answer.json, 'id'));
  const { status, json } = answer;
  const name = stringField(json, 'name');
  const message = stringField(json, 'message') ?? answer.body;
  // `retry-after` is documented on 429s; `ratelimit-reset` (seconds) is the fallback.
  const wait =
    answer.retryAfterSeconds ??
    (status === 429 ? secondsHeader(answer.headers, 'ratelimit-reset') : undefined);
  return resultOfClass(
    resendClass(status, name, message),
    shortReason(name ?? `http ${status}`, message),
    name,
    wait,
  );
}

/** The Resend provider definition. */
export const resend = httpEmailProvider({
  name: 'resend',
  limits: RESEND_LIMITS,
  idempotent: true,
  configFromEnv: resendConfigFromEnv,
  build: buildResendRequest,
  classify: classifyResendAnswer,
});
