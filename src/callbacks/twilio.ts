// Twilio Messaging status callbacks.
// Signature: https://www.twilio.com/docs/usage/webhooks/webhooks-security (X-Twilio-Signature =
// base64 HMAC-SHA1 with the Auth Token over the full URL + every POST param name+value sorted by name)
// Statuses: https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
// Errors: https://www.twilio.com/docs/api/errors/<code>
import { toBase64, toHex } from '../lib/encoding';
import {
  accept,
  codeField,
  constantTimeEqual,
  digest,
  hmac,
  matchesAny,
  neverThrows,
  parseSafely,
  plainEvent,
  readSecret,
  refuse,
  type SmsErrorCodes,
  smsFailureEvent,
  stringField,
} from './shared';
import type { CallbackEvent, CallbackHandler, CallbackRequest, ReplayGuard, VerifyResult } from './types';

export interface TwilioCallbackConfig {
  authToken: string;
}

/** Reads TWILIO_AUTH_TOKEN, the key Twilio signs every webhook with; null when unset. */
export function twilioCallbackConfigFromEnv(env: Record<string, unknown>): TwilioCallbackConfig | null {
  const authToken = readSecret(env, 'TWILIO_AUTH_TOKEN');
  return authToken ? { authToken } : null;
}

/**
 * The URLs Twilio may have signed for this request. Twilio's own SDKs accept the URL with and
 * without the default port, because Twilio's signing is inconsistent about it; the exact
 * received URL comes first, so nothing is re-encoded for the common case.
 */
export function signedUrlCandidates(url: string): string[] {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return [url];
  const withoutPort = new URL(url);
  withoutPort.port = '';
  const defaultPort = parsed.protocol === 'https:' ? '443' : '80';
  const userinfo = parsed.username
    ? `${parsed.username}${parsed.password ? `:${parsed.password}` : ''}@`
    : '';
  const withPort = `${parsed.protocol}//${userinfo}${parsed.hostname}:${parsed.port || defaultPort}${parsed.pathname}${parsed.search}${parsed.hash}`;
  return [...new Set([url, withoutPort.href, withPort])];
}

/**
 * The string Twilio signs after the URL: each param name followed by its value, names sorted;
 * a repeated name contributes each distinct value, sorted (as the official SDKs do).
 */
export function signedParamString(params: URLSearchParams): string {
  const names = [...new Set(params.keys())].sort();
  return names
    .map((name) =>
      [...new Set(params.getAll(name))]
        .sort()
        .map((value) => name + value)
        .join(''),
    )
    .join('');
}

/**
 * Verifies X-Twilio-Signature. Form posts sign URL + params; GET requests and JSON bodies sign
 * the URL alone, and a JSON body must then match the URL's `bodySHA256` (hex SHA-256) parameter.
 * Twilio signatures carry no timestamp, so there is no freshness check; a replayed status is
 * the same status again, which the status machine absorbs.
 */
export function verifyTwilioCallback(
  request: CallbackRequest,
  config: TwilioCallbackConfig,
  _nowMs: number,
  _replay?: ReplayGuard,
): Promise<VerifyResult> {
  return neverThrows(async () => {
    const signature = request.headers.get('x-twilio-signature');
    if (!signature) return refuse('missing signature');
    const url = new URL(request.url);
    const bodyHash = url.searchParams.get('bodySHA256');
    let paramString = '';
    if (bodyHash !== null) {
      if (!(await constantTimeEqual(bodyHash.toLowerCase(), toHex(await digest('SHA-256', request.body)))))
        return refuse('body hash mismatch');
    } else if (request.method.toUpperCase() === 'POST') {
      paramString = signedParamString(new URLSearchParams(request.body));
    }
    const expected = await Promise.all(
      signedUrlCandidates(request.url).map(async (candidate) =>
        toBase64(await hmac('SHA-1', config.authToken, candidate + paramString)),
      ),
    );
    return (await matchesAny(signature.trim(), expected)) ? accept() : refuse('signature mismatch');
  });
}

/** Delivery errors that prove the number cannot receive SMS: suppress it. */
const TWILIO_CODES: SmsErrorCodes = {
  /** The recipient replied STOP: https://www.twilio.com/docs/api/errors/21610 */
  optedOut: '21610',
  permanentAddress: new Set([
    '30005', // Unknown destination handset: the number is unknown and may no longer exist
    '30006', // Landline or unreachable carrier: "do not retry the same SMS to that destination"
  ]),
};

const PLAIN: Readonly<Record<string, CallbackEvent['status']>> = { delivered: 'delivered', read: 'opened' };

/**
 * Maps MessageStatus (SmsStatus on older callbacks): delivered -> delivered; read -> opened;
 * undelivered/failed/canceled -> failed, or unsubscribed for 21610. 30003 (handset switched off)
 * is temporary and never suppresses. queued/accepted/sending/sent/scheduled carry no outcome.
 */
export function parseTwilioCallback(body: string, _headers: Headers): CallbackEvent[] {
  return parseSafely(() => {
    const params = Object.fromEntries(new URLSearchParams(body));
    const status = (params.MessageStatus ?? params.SmsStatus ?? '').toLowerCase();
    const providerMessageId = stringField(params, 'MessageSid') ?? stringField(params, 'SmsSid');
    const errorCode = codeField(params, 'ErrorCode');
    const base = { providerMessageId };
    const plain = plainEvent(PLAIN, status, base);
    if (plain) return [plain];
    if (status !== 'undelivered' && status !== 'failed' && status !== 'canceled') return [];
    const reason = `twilio ${status}${errorCode ? ` ${errorCode}` : ''}`;
    return [smsFailureEvent(TWILIO_CODES, errorCode, { ...base, reason })];
  });
}

export const twilioCallback: CallbackHandler<TwilioCallbackConfig> = {
  configFromEnv: twilioCallbackConfigFromEnv,
  verify: verifyTwilioCallback,
  parse: parseTwilioCallback,
};
