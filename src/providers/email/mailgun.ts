// Mailgun Messages API: https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/messages/post-v3--domain-name--messages
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

/**
 * Mailgun settings. A domain lives in one region: US domains use the default
 * https://api.mailgun.net, EU domains need `MAILGUN_BASE_URL=https://api.eu.mailgun.net`.
 */
export interface MailgunConfig {
  apiKey: string;
  domain: string;
  baseUrl: string;
  sender: Sender;
}

/** Reads the Mailgun config; throws MissingCredentialsError naming absent vars. */
export function mailgunConfigFromEnv(env: ProviderEnv): MailgunConfig {
  const vars = requireVars(env, 'mailgun', ['MAILGUN_API_KEY', 'MAILGUN_DOMAIN', 'EMAIL_FROM']);
  return {
    apiKey: vars.MAILGUN_API_KEY,
    domain: vars.MAILGUN_DOMAIN.trim(),
    baseUrl: readBaseUrl(env, 'MAILGUN_BASE_URL', 'https://api.mailgun.net'),
    sender: readSender(env, vars.EMAIL_FROM),
  };
}

/**
 * Builds `POST /v3/{domain}/messages` with the documented multipart/form-data body (the runtime
 * picks the boundary). Custom headers travel as `h:<Name>` fields and the delivery id as the user
 * variable `v:delivery_id`, which Mailgun echoes in webhook `user-variables`.
 */
export function buildMailgunRequest(config: MailgunConfig, request: SendRequest): Request {
  const job = requireEmailJob(request);
  const form = new FormData();
  form.append('from', formatMailbox(config.sender.from));
  form.append('to', job.to);
  form.append('subject', job.subject);
  if (job.text) form.append('text', job.text);
  if (job.html) form.append('html', job.html);
  if (config.sender.replyTo) form.append('h:Reply-To', formatMailbox(config.sender.replyTo));
  for (const [name, value] of job.headers) form.append(`h:${name}`, value);
  form.append('v:delivery_id', request.deliveryId);
  return new Request(`${config.baseUrl}/v3/${encodeURIComponent(config.domain)}/messages`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${btoa(`api:${config.apiKey}`)}`,
      'User-Agent': USER_AGENT,
    },
    body: form,
  });
}

/** Maps a Mailgun answer to a SendResult per the documented response codes. */
export async function interpretMailgunResponse(response: Response, nowMs: number): Promise<SendResult> {
  const { text, json } = await readBody(response);
  if (response.ok) {
    const id = stringField(json, 'id');
    return id ? { kind: 'sent', providerMessageId: id } : { kind: 'sent' };
  }
  const status = response.status;
  const message = stringField(json, 'message') ?? text;
  const code = `http_${status}`;
  const reason = shortReason(`mailgun ${status}`, message);
  if (isRetryableStatus(status)) return retryable(reason, retryAfterSeconds(response, nowMs), code);
  // 401/403: bad key or a sandbox domain's unauthorized recipient; 404: unknown domain or base URL.
  if (status === 401 || status === 403 || status === 404)
    return permanent(reason, code, { configError: true });
  // Mailgun names the field that failed its RFC 5321/5322 syntax check.
  if (/'to' parameter is not a valid address/i.test(message))
    return permanent(reason, code, { invalidAddress: true });
  if (/'from' parameter is not a valid address/i.test(message))
    return permanent(reason, code, { configError: true });
  return permanent(reason, code);
}

/** The Mailgun provider definition. */
export const mailgun: ProviderDefinition = httpEmailProvider({
  name: 'mailgun',
  configFromEnv: mailgunConfigFromEnv,
  build: buildMailgunRequest,
  interpret: interpretMailgunResponse,
});
