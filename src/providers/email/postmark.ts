// Postmark Email API: https://postmarkapp.com/developer/api/email-api (error codes: /developer/api/overview#error-codes)
import { type HttpAnswer, type HttpCall, numberField, stringField } from '../http-call';
import { classOfStatus, type ErrorClass, resultOfClass, sent, shortReason } from '../results';
import type { ProviderEnv, SendRequest, SendResult } from '../types';
import { readVar } from '../vars';
import { type KeyedEmailConfig, readKeyedEmailConfig } from './keyed-config';
import { formatMailbox } from './mailbox';
import { EMAIL_TIMEOUT_MS, httpEmailProvider, MB, requireEmailJob, USER_AGENT } from './shared';

/**
 * Postmark's limits (https://postmarkapp.com/developer, "Things you should know"): 10 MB per
 * email including attachments, 50 recipients across To, Cc and Bcc. No rate is published.
 */
export const POSTMARK_LIMITS = {
  timeoutMs: EMAIL_TIMEOUT_MS,
  maxBodyBytes: 10 * MB,
  recipientsPerRequest: 50,
};

/** Postmark settings: `POSTMARK_SERVER_TOKEN` (the key), optional base URL and `POSTMARK_MESSAGE_STREAM`. */
export interface PostmarkConfig extends KeyedEmailConfig {
  messageStream: string;
}

/** Reads the Postmark config; throws MissingCredentialsError naming absent vars. */
export function postmarkConfigFromEnv(env: ProviderEnv): PostmarkConfig {
  return {
    ...readKeyedEmailConfig(
      env,
      'postmark',
      'POSTMARK_SERVER_TOKEN',
      'POSTMARK_BASE_URL',
      'https://api.postmarkapp.com',
    ),
    messageStream: readVar(env, 'POSTMARK_MESSAGE_STREAM')?.trim() ?? 'outbound',
  };
}

/**
 * Builds `POST /email`. Custom headers go in `Headers: [{Name, Value}]`; `Metadata.delivery_id`
 * comes back on Postmark's delivery, bounce and open webhooks.
 */
export function buildPostmarkRequest(config: PostmarkConfig, request: SendRequest): HttpCall {
  const job = requireEmailJob(request);
  const body = {
    From: formatMailbox(config.sender.from),
    To: job.to,
    Subject: job.subject,
    ...(job.html ? { HtmlBody: job.html } : {}),
    ...(job.text ? { TextBody: job.text } : {}),
    ...(config.sender.replyTo ? { ReplyTo: formatMailbox(config.sender.replyTo) } : {}),
    ...(job.headers.length > 0 ? { Headers: job.headers.map(([Name, Value]) => ({ Name, Value })) } : {}),
    MessageStream: config.messageStream,
    Metadata: { delivery_id: request.deliveryId },
  };
  return {
    url: `${config.baseUrl}/email`,
    method: 'POST',
    headers: {
      Accept: 'application/json',
      'Content-Type': 'application/json',
      'X-Postmark-Server-Token': config.apiKey,
      'User-Agent': USER_AGENT,
    },
    body: JSON.stringify(body),
  };
}

/**
 * API error codes that mean the server, sender or account needs an operator: 10 bad token,
 * 400/401 sender signature missing or unconfirmed, 405 out of credits, 412 account pending,
 * 413 account may not send.
 */
const CONFIG_ERROR_CODES = new Set([10, 400, 401, 405, 412, 413]);
/** 100 maintenance and 429 rate limit: the same request will work later. */
const RETRYABLE_ERROR_CODES = new Set([100, 429]);

/** Classifies an API error code per Postmark's error code table. */
function classOfErrorCode(errorCode: number, message: string): ErrorClass {
  if (RETRYABLE_ERROR_CODES.has(errorCode)) return 'retryable';
  if (CONFIG_ERROR_CODES.has(errorCode)) return 'configError';
  // 406: the recipient hard-bounced, complained or was suppressed; Postmark refuses to send to it.
  if (errorCode === 406) return 'invalidAddress';
  if (errorCode === 300) {
    // 300 covers every invalid field; only a bad recipient proves the address wrong.
    if (/'(From|ReplyTo|Reply-To)'/i.test(message)) return 'configError';
    if (/'To'|recipient/i.test(message)) return 'invalidAddress';
  }
  return 'permanent';
}

function postmarkClass(status: number, errorCode: number | undefined, message: string): ErrorClass {
  // 401 a missing or wrong server token, 404 a wrong base URL; a bare 403 is only this message.
  const byStatus = classOfStatus(status, { 403: 'permanent', 404: 'configError' });
  if (byStatus !== 'permanent' || errorCode === undefined) return byStatus;
  return classOfErrorCode(errorCode, message);
}

/** Maps a Postmark answer to a SendResult: 200 with `ErrorCode: 0` is the only success. */
export function classifyPostmarkAnswer(answer: HttpAnswer): SendResult {
  const errorCode = numberField(answer.json, 'ErrorCode');
  if (answer.ok && (errorCode === undefined || errorCode === 0))
    return sent(stringField(answer.json, 'MessageID'));
  const message = stringField(answer.json, 'Message') ?? answer.body;
  const code = errorCode === undefined ? `http_${answer.status}` : String(errorCode);
  const reason = shortReason(`postmark ${errorCode ?? answer.status}`, message);
  return resultOfClass(
    postmarkClass(answer.status, errorCode, message),
    reason,
    code,
    answer.retryAfterSeconds,
  );
}

/** The Postmark provider definition. */
export const postmark = httpEmailProvider({
  name: 'postmark',
  limits: POSTMARK_LIMITS,
  configFromEnv: postmarkConfigFromEnv,
  build: buildPostmarkRequest,
  classify: classifyPostmarkAnswer,
});
