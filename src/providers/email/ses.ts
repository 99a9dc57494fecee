// Amazon SES API v2 SendEmail: https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
import { AwsClient } from 'aws4fetch';
import { sha256Hex } from '../../lib/crypto';
import { toBase64 } from '../../lib/encoding';
import { isRetryableStatus } from '../../lib/http';
import { type HttpAnswer, type HttpCall, stringField } from '../http-call';
import { classOfStatus, type ErrorClass, resultOfClass, sent, shortReason } from '../results';
import type { ProviderEnv, SendRequest, SendResult } from '../types';
import { readBaseUrl, readVar, requireVars } from '../vars';
import { formatMailbox, type Mailbox, readSender, type Sender } from './mailbox';
import { EMAIL_TIMEOUT_MS, httpEmailProvider, MB, requireEmailJob, USER_AGENT } from './shared';

/**
 * SES limits (https://docs.aws.amazon.com/ses/latest/dg/quotas.html): 40 MB per message after
 * base64 through the v2 API Herald calls (the v1 API allows 10 MB) and 50 recipients. The
 * sending rate is per account (1 per second in the sandbox), so none is declared.
 */
export const SES_LIMITS = { timeoutMs: EMAIL_TIMEOUT_MS, maxBodyBytes: 40 * MB, recipientsPerRequest: 50 };

/** SES settings: AWS credentials and region, optional `SES_BASE_URL` and `SES_CONFIGURATION_SET`. */
export interface SesConfig {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  baseUrl: string;
  configurationSet?: string;
  sender: Sender;
}

/** Reads the SES config; throws MissingCredentialsError naming absent vars. */
export function sesConfigFromEnv(env: ProviderEnv): SesConfig {
  const vars = requireVars(env, 'ses', [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_REGION',
    'EMAIL_FROM',
  ]);
  const region = vars.AWS_REGION.trim();
  const sessionToken = readVar(env, 'AWS_SESSION_TOKEN');
  const configurationSet = readVar(env, 'SES_CONFIGURATION_SET')?.trim();
  return {
    accessKeyId: vars.AWS_ACCESS_KEY_ID,
    secretAccessKey: vars.AWS_SECRET_ACCESS_KEY,
    ...(sessionToken ? { sessionToken } : {}),
    region,
    baseUrl: readBaseUrl(env, 'SES_BASE_URL') ?? `https://email.${region}.amazonaws.com`,
    ...(configurationSet ? { configurationSet } : {}),
    sender: readSender(env, vars.EMAIL_FROM),
  };
}

/** SES wants a non-ASCII display name as an RFC 2047 encoded-word; ASCII names pass as they are. */
export function sesMailbox(mailbox: Mailbox): string {
  if (!mailbox.name || /^[\x20-\x7e]*$/.test(mailbox.name)) return formatMailbox(mailbox);
  return `=?UTF-8?B?${toBase64(new TextEncoder().encode(mailbox.name))}?= <${mailbox.email}>`;
}

const utf8 = (data: string) => ({ Data: data, Charset: 'UTF-8' });

/**
 * Builds the unsigned `POST /v2/email/outbound-emails` (a Simple message, so SES assembles the MIME
 * and adds `Content.Simple.Headers`). `EmailTags.delivery_id` appears on SES event publishing.
 */
export function buildSesRequest(config: SesConfig, request: SendRequest): HttpCall {
  const job = requireEmailJob(request);
  const body = {
    FromEmailAddress: sesMailbox(config.sender.from),
    Destination: { ToAddresses: [job.to] },
    ...(config.sender.replyTo ? { ReplyToAddresses: [sesMailbox(config.sender.replyTo)] } : {}),
    Content: {
      Simple: {
        Subject: utf8(job.subject),
        Body: {
          ...(job.text ? { Text: utf8(job.text) } : {}),
          ...(job.html ? { Html: utf8(job.html) } : {}),
        },
        ...(job.headers.length > 0 ? { Headers: job.headers.map(([Name, Value]) => ({ Name, Value })) } : {}),
      },
    },
    ...(config.configurationSet ? { ConfigurationSetName: config.configurationSet } : {}),
    EmailTags: [{ Name: 'delivery_id', Value: request.deliveryId }],
  };
  return {
    url: `${config.baseUrl}/v2/email/outbound-emails`,
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'User-Agent': USER_AGENT },
    body: JSON.stringify(body),
  };
}

/** SigV4 date format, `YYYYMMDD'T'HHMMSS'Z'`. */
export function amzDate(nowMs: number): string {
  return new Date(nowMs).toISOString().replace(/[:-]|\.\d{3}/g, '');
}

/**
 * Signs the request with SigV4 (service `ses`) at the injected time. The payload hash is sent as
 * `X-Amz-Content-Sha256` so it is part of the signed headers.
 */
export async function signSesRequest(client: AwsClient, request: HttpCall, nowMs: number): Promise<Request> {
  return client.sign(request.url, {
    method: request.method,
    headers: { ...request.headers, 'X-Amz-Content-Sha256': await sha256Hex(request.body) },
    body: request.body,
    aws: { datetime: amzDate(nowMs) },
  });
}

/** Error types that will succeed later: throttling and sending-quota limits. */
const RETRYABLE_TYPES = new Set([
  'TooManyRequestsException',
  'LimitExceededException',
  'ThrottlingException',
  'Throttling',
  'ServiceUnavailable',
  'InternalFailure',
]);

/** Error types an operator must fix: sender identity, account state, credentials, config set. */
const CONFIG_TYPES = new Set([
  'MailFromDomainNotVerifiedException',
  'AccountSuspendedException',
  'SendingPausedException',
  'NotFoundException',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
]);

/** The error type from `x-amzn-ErrorType` (`Type:namespace`) or the body's `__type` (`ns#Type`). */
function errorType(answer: HttpAnswer): string | undefined {
  const raw =
    answer.headers.get('x-amzn-errortype') ??
    stringField(answer.json, '__type') ??
    stringField(answer.json, 'code');
  if (!raw) return undefined;
  return raw.split(':')[0]?.split('#').pop()?.trim() || undefined;
}

function sesClass(status: number, type: string | undefined, message: string): ErrorClass {
  if ((type && RETRYABLE_TYPES.has(type)) || isRetryableStatus(status)) return 'retryable';
  if (type && CONFIG_TYPES.has(type)) return 'configError';
  // In the sandbox, or with an unverified From identity, SES rejects with "not verified".
  if (type === 'MessageRejected' && /not verified/i.test(message)) return 'configError';
  return classOfStatus(status);
}

/** Maps an SES v2 answer to a SendResult by its error type. */
export function classifySesAnswer(answer: HttpAnswer): SendResult {
  if (answer.ok) return sent(stringField(answer.json, 'MessageId'));
  const type = errorType(answer);
  const message = stringField(answer.json, 'message') ?? stringField(answer.json, 'Message') ?? answer.body;
  const code = type ?? `http_${answer.status}`;
  const errorClass = sesClass(answer.status, type, message);
  return resultOfClass(errorClass, shortReason(code, message), code, answer.retryAfterSeconds);
}

/** The Amazon SES (API v2) provider definition. */
export const ses = httpEmailProvider({
  name: 'ses',
  limits: SES_LIMITS,
  configFromEnv(env: ProviderEnv) {
    const config = sesConfigFromEnv(env);
    // aws4fetch caches derived signing keys per day inside this client, so keep one per instance.
    const client = new AwsClient({
      accessKeyId: config.accessKeyId,
      secretAccessKey: config.secretAccessKey,
      ...(config.sessionToken ? { sessionToken: config.sessionToken } : {}),
      service: 'ses',
      region: config.region,
    });
    return { config, client };
  },
  build: ({ config, client }, request, nowMs) =>
    signSesRequest(client, buildSesRequest(config, request), nowMs),
  classify: classifySesAnswer,
});
