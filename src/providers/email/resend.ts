// Resend Send Email API: https://resend.com/docs/api-reference/emails/send-email (errors: /docs/api-reference/errors)
import { isRetryableStatus } from '../../lib/http';
import {
  type ProviderDefinition,
  type ProviderEnv,
  requireVars,
  type SendRequest,
  type SendResult,
} from '../types';
import {
  formatMailbox,
  type HttpRequest,
  httpEmailProvider,
  permanent,
  readBaseUrl,
  readBody,
  readSender,
  requireEmailJob,
  retryAfterSeconds,
  retryable,
  type Sender,
  shortReason,
  stringField,
  USER_AGENT,
} from './shared';

/** Resend settings: `RESEND_API_KEY`, optional `RESEND_BASE_URL`, and the shared sender. */
export interface ResendConfig {
  apiKey: string;
  baseUrl: string;
  sender: Sender;
}

/** Reads the Resend config; throws MissingCredentialsError naming absent vars. */
export function resendConfigFromEnv(env: ProviderEnv): ResendConfig {
  const vars = requireVars(env, 'resend', ['RESEND_API_KEY', 'EMAIL_FROM']);
  return {
    apiKey: vars.RESEND_API_KEY,
    baseUrl: readBaseUrl(env, 'RESEND_BASE_URL', 'https://api.resend.com'),
    sender: readSender(env, vars.EMAIL_FROM),
  };
}

/**
 * Builds `POST /emails`. The delivery id is the `Idempotency-Key`, so a redelivered queue message
 * within Resend's 24 h window gets the original answer instead of a second email. The id is also
 * the `delivery_id` tag (tag values allow ASCII letters, digits, `_` and `-`: ids use only those).
 */
export function buildResendRequest(config: ResendConfig, request: SendRequest): HttpRequest {
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

/** Maps a Resend answer to a SendResult per the documented error table. */
export async function interpretResendResponse(response: Response, nowMs: number): Promise<SendResult> {
  const { text, json } = await readBody(response);
  if (response.ok) {
    const id = stringField(json, 'id');
    return id ? { kind: 'sent', providerMessageId: id } : { kind: 'sent' };
  }
  const status = response.status;
  const name = stringField(json, 'name');
  const message = stringField(json, 'message') ?? text;
  const reason = shortReason(name ?? `http ${status}`, message);
  if (status === 429) {
    // `retry-after` is documented on 429s; `ratelimit-reset` (seconds) is the fallback.
    const wait = retryAfterSeconds(response, nowMs) ?? resetSeconds(response);
    return retryable(reason, wait, name);
  }
  if (status === 409) {
    // A concurrent request with the same key is still running: its answer will come, so retry.
    if (name === 'concurrent_idempotent_requests')
      return retryable(reason, retryAfterSeconds(response, nowMs), name);
    return permanent(reason, name);
  }
  if (isRetryableStatus(status)) return retryable(reason, retryAfterSeconds(response, nowMs), name);
  if (status === 401 || status === 403 || status === 404 || status === 405) {
    // Bad or missing key, unverified domain, test-mode restriction, wrong base URL.
    return permanent(reason, name, { configError: true });
  }
  if (status === 400 && /api key/i.test(message)) return permanent(reason, name, { configError: true });
  if (status === 422 && name && CONFIG_ERRORS_422.has(name))
    return permanent(reason, name, { configError: true });
  return permanent(reason, name);
}

function resetSeconds(response: Response): number | undefined {
  const value = response.headers.get('ratelimit-reset');
  return value && /^\d+$/.test(value.trim()) ? Number(value.trim()) : undefined;
}

/** The Resend provider definition. */
export const resend: ProviderDefinition = httpEmailProvider({
  name: 'resend',
  configFromEnv: resendConfigFromEnv,
  build: buildResendRequest,
  interpret: interpretResendResponse,
});
