// SendGrid v3 Mail Send: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
import { isRetryableStatus } from '../../lib/http';
import {
  type ProviderDefinition,
  type ProviderEnv,
  requireVars,
  type SendRequest,
  type SendResult,
} from '../types';
import {
  type HttpRequest,
  httpEmailProvider,
  type Mailbox,
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

/** SendGrid settings: `SENDGRID_API_KEY`, optional `SENDGRID_BASE_URL` (EU: https://api.eu.sendgrid.com). */
export interface SendgridConfig {
  apiKey: string;
  baseUrl: string;
  sender: Sender;
}

/** Reads the SendGrid config; throws MissingCredentialsError naming absent vars. */
export function sendgridConfigFromEnv(env: ProviderEnv): SendgridConfig {
  const vars = requireVars(env, 'sendgrid', ['SENDGRID_API_KEY', 'EMAIL_FROM']);
  return {
    apiKey: vars.SENDGRID_API_KEY,
    baseUrl: readBaseUrl(env, 'SENDGRID_BASE_URL', 'https://api.sendgrid.com'),
    sender: readSender(env, vars.EMAIL_FROM),
  };
}

function emailObject(mailbox: Mailbox): { email: string; name?: string } {
  return mailbox.name ? { email: mailbox.email, name: mailbox.name } : { email: mailbox.email };
}

/**
 * Builds `POST /v3/mail/send`. SendGrid requires `text/plain` before `text/html` in `content`;
 * `custom_args.delivery_id` comes back on every Event Webhook event for this message.
 */
export function buildSendgridRequest(config: SendgridConfig, request: SendRequest): HttpRequest {
  const job = requireEmailJob(request);
  const content = [
    ...(job.text ? [{ type: 'text/plain', value: job.text }] : []),
    ...(job.html ? [{ type: 'text/html', value: job.html }] : []),
  ];
  const body = {
    personalizations: [{ to: [{ email: job.to }] }],
    from: emailObject(config.sender.from),
    ...(config.sender.replyTo ? { reply_to: emailObject(config.sender.replyTo) } : {}),
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
function rateLimitResetSeconds(response: Response, nowMs: number): number | undefined {
  const value = response.headers.get('x-ratelimit-reset');
  if (!value || !/^\d+$/.test(value.trim())) return undefined;
  return Math.max(0, Math.ceil(Number(value.trim()) - nowMs / 1000));
}

/** Maps a SendGrid answer to a SendResult: 202 is the only success Mail Send documents. */
export async function interpretSendgridResponse(response: Response, nowMs: number): Promise<SendResult> {
  const { text, json } = await readBody(response);
  if (response.ok) {
    const id = response.headers.get('x-message-id');
    return id ? { kind: 'sent', providerMessageId: id } : { kind: 'sent' };
  }
  const status = response.status;
  const error = firstError(json);
  const code = `http_${status}`;
  const reason = shortReason(`sendgrid ${status}`, error.field, error.message ?? text);
  if (status === 429) {
    return retryable(
      reason,
      retryAfterSeconds(response, nowMs) ?? rateLimitResetSeconds(response, nowMs),
      code,
    );
  }
  if (isRetryableStatus(status)) return retryable(reason, retryAfterSeconds(response, nowMs), code);
  // 401 bad key, 403 missing permission or unverified sender identity, 404 wrong base URL.
  if (status === 401 || status === 403 || status === 404)
    return permanent(reason, code, { configError: true });
  // 400 invalid request, 413 payload too large: sending the same message again cannot succeed.
  return permanent(reason, code);
}

/** The SendGrid provider definition. */
export const sendgrid: ProviderDefinition = httpEmailProvider({
  name: 'sendgrid',
  configFromEnv: sendgridConfigFromEnv,
  build: buildSendgridRequest,
  interpret: interpretSendgridResponse,
});
