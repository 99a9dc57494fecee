// Mailgun Messages API: https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/messages/post-v3--domain-name--messages
import { basicAuth, type HttpAnswer, stringField } from '../http-call';
import { classOfStatus, type ErrorClass, resultOfClass, sent, shortReason } from '../results';
import type { ProviderEnv, SendRequest, SendResult } from '../types';
import { readBaseUrl, requireVars } from '../vars';
import { formatMailbox, readSender, type Sender } from './mailbox';
import { EMAIL_TIMEOUT_MS, httpEmailProvider, MB, requireEmailJob, USER_AGENT } from './shared';

/**
 * Mailgun's limits: 25 MB per message (https://documentation.mailgun.com/en/latest/api-sending.html)
 * and 1,000 recipients per request (batch sending, same manual). No rate is published.
 */
export const MAILGUN_LIMITS = {
  timeoutMs: EMAIL_TIMEOUT_MS,
  maxBodyBytes: 25 * MB,
  recipientsPerRequest: 1000,
};

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
    baseUrl: readBaseUrl(env, 'MAILGUN_BASE_URL') ?? 'https://api.mailgun.net',
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
      Authorization: basicAuth('api', config.apiKey),
      'User-Agent': USER_AGENT,
    },
    body: form,
  });
}

function mailgunClass(status: number, message: string): ErrorClass {
  // 401/403: bad key or a sandbox domain's unauthorized recipient; 404: unknown domain or base URL.
  const byStatus = classOfStatus(status, { 404: 'configError' });
  if (byStatus !== 'permanent') return byStatus;
  // Mailgun names the field that failed its RFC 5321/5322 syntax check.
  if (/'to' parameter is not a valid address/i.test(message)) return 'invalidAddress';
  if (/'from' parameter is not a valid address/i.test(message)) return 'configError';
  return 'permanent';
}

/** Maps a Mailgun answer to a SendResult per the documented response codes. */
export function classifyMailgunAnswer(answer: HttpAnswer): SendResult {
  if (answer.ok) return sent(stringField(answer.json, 'id'));
  const { status } = answer;
  const message = stringField(answer.json, 'message') ?? answer.body;
  const reason = shortReason(`mailgun ${status}`, message);
  return resultOfClass(mailgunClass(status, message), reason, `http_${status}`, answer.retryAfterSeconds);
}

/** The Mailgun provider definition. */
export const mailgun = httpEmailProvider({
  name: 'mailgun',
  limits: MAILGUN_LIMITS,
  configFromEnv: mailgunConfigFromEnv,
  build: buildMailgunRequest,
  classify: classifyMailgunAnswer,
});
