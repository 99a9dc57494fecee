// Postmark Email API: https://postmarkapp.com/developer/api/email-api (error codes: /developer/api/overview#error-codes)
import { isRetryableStatus } from '../../lib/http';
import {
  type ProviderDefinition,
  type ProviderEnv,
  readVar,
  requireVars,
  type SendRequest,
  type SendResult,
} from '../types';
import {
  formatMailbox,
  type HttpRequest,
  httpEmailProvider,
  numberField,
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

/** Postmark settings: `POSTMARK_SERVER_TOKEN`, optional base URL and `POSTMARK_MESSAGE_STREAM`. */
export interface PostmarkConfig {
  serverToken: string;
  baseUrl: string;
  messageStream: string;
  sender: Sender;
}

/** Reads the Postmark config; throws MissingCredentialsError naming absent vars. */
export function postmarkConfigFromEnv(env: ProviderEnv): PostmarkConfig {
  const vars = requireVars(env, 'postmark', ['POSTMARK_SERVER_TOKEN', 'EMAIL_FROM']);
  return {
    serverToken: vars.POSTMARK_SERVER_TOKEN,
    baseUrl: readBaseUrl(env, 'POSTMARK_BASE_URL', 'https://api.postmarkapp.com'),
    messageStream: readVar(env, 'POSTMARK_MESSAGE_STREAM')?.trim() ?? 'outbound',
    sender: readSender(env, vars.EMAIL_FROM),
  };
}

/**
 * Builds `POST /email`. Custom headers go in `Headers: [{Name, Value}]`; `Metadata.delivery_id`
 * comes back on Postmark's delivery, bounce and open webhooks.
 */
export function buildPostmarkRequest(config: PostmarkConfig, request: SendRequest): HttpRequest {
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
      'X-Postmark-Server-Token': config.serverToken,
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

/** Classifies a 422 `{ErrorCode, Message}` per Postmark's error code table. */
function classifyErrorCode(
  errorCode: number | undefined,
  status: number,
  reason: string,
  message: string,
): SendResult {
  if (errorCode === undefined) return permanent(reason, `http_${status}`);
  const code = String(errorCode);
  if (RETRYABLE_ERROR_CODES.has(errorCode)) return retryable(reason, undefined, code);
  if (CONFIG_ERROR_CODES.has(errorCode)) return permanent(reason, code, { configError: true });
  // 406: the recipient hard-bounced, complained or was suppressed; Postmark refuses to send to it.
  if (errorCode === 406) return permanent(reason, code, { invalidAddress: true });
  if (errorCode === 300) {
    // 300 covers every invalid field; only a bad recipient proves the address wrong.
    if (/'(From|ReplyTo|Reply-To)'/i.test(message)) return permanent(reason, code, { configError: true });
    if (/'To'|recipient/i.test(message)) return permanent(reason, code, { invalidAddress: true });
  }
  return permanent(reason, code);
}

/** Maps a Postmark answer to a SendResult: 200 with `ErrorCode: 0` is the only success. */
export async function interpretPostmarkResponse(response: Response, nowMs: number): Promise<SendResult> {
  const { text, json } = await readBody(response);
  const status = response.status;
  const errorCode = numberField(json, 'ErrorCode');
  const message = stringField(json, 'Message') ?? text;
  if (response.ok && (errorCode === undefined || errorCode === 0)) {
    const id = stringField(json, 'MessageID');
    return id ? { kind: 'sent', providerMessageId: id } : { kind: 'sent' };
  }
  const reason = shortReason(
    errorCode === undefined ? `postmark ${status}` : `postmark ${errorCode}`,
    message,
  );
  if (isRetryableStatus(status)) {
    return retryable(reason, retryAfterSeconds(response, nowMs), String(errorCode ?? `http_${status}`));
  }
  // 401 missing or wrong server token; 404 wrong base URL.
  if (status === 401 || status === 404) {
    return permanent(reason, String(errorCode ?? `http_${status}`), { configError: true });
  }
  return classifyErrorCode(errorCode, status, reason, message);
}

/** The Postmark provider definition. */
export const postmark: ProviderDefinition = httpEmailProvider({
  name: 'postmark',
  configFromEnv: postmarkConfigFromEnv,
  build: buildPostmarkRequest,
  interpret: interpretPostmarkResponse,
});
