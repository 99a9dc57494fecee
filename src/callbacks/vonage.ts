// Vonage SMS API delivery receipts (DLR), signed with the account's signature secret.
// Signing: https://developer.vonage.com/en/getting-started/concepts/signing-messages (every param
// but `sig`, sorted by name, as `&name=value` with `&` and `=` in values replaced by `_`; then
// MD5 of that string + secret ("MD5 hash", the dashboard default) or an HMAC keyed with the
// secret (MD5/SHA-1/SHA-256/SHA-512 HMAC), hex; signed webhooks carry `timestamp` and `nonce`)
// DLR fields: https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts
// err-code: https://api.support.vonage.com/hc/en-us/articles/204014733
// (The Messages API signs with a JWT instead; Herald sends through the SMS API, so that is not read here.)
import { toHex } from '../lib/encoding';
import {
  codeField,
  constantTimeEqual,
  digest,
  event,
  type HmacHash,
  hmac,
  isFresh,
  isoFromDateString,
  neverThrows,
  parseSafely,
  parseUnixSeconds,
  readParams,
  readSecret,
  refuse,
  type SmsErrorCodes,
  smsFailureEvent,
  spendOnce,
  stringField,
} from './shared';
import type { CallbackEvent, CallbackHandler, CallbackRequest, ReplayGuard, VerifyResult } from './types';
import { CallbackConfigError } from './types';

/** `md5hash` is Vonage's plain "MD5 hash" (secret appended); the others are HMACs. */
export type VonageSignatureMethod = 'md5hash' | 'md5hmac' | 'sha1hmac' | 'sha256hmac' | 'sha512hmac';

export interface VonageCallbackConfig {
  signatureSecret: string;
  method: VonageSignatureMethod;
}

/** Accepted spellings of VONAGE_SIGNATURE_METHOD (the dashboard's names and the SDK's). */
const METHOD_NAMES: Record<string, VonageSignatureMethod> = {
  md5hash: 'md5hash',
  md5: 'md5hmac',
  md5hmac: 'md5hmac',
  sha1: 'sha1hmac',
  sha1hmac: 'sha1hmac',
  sha256: 'sha256hmac',
  sha256hmac: 'sha256hmac',
  sha512: 'sha512hmac',
  sha512hmac: 'sha512hmac',
};

const HMAC_HASHES: Record<Exclude<VonageSignatureMethod, 'md5hash'>, HmacHash> = {
  md5hmac: 'MD5',
  sha1hmac: 'SHA-1',
  sha256hmac: 'SHA-256',
  sha512hmac: 'SHA-512',
};

/**
 * Reads VONAGE_SIGNATURE_SECRET (null when unset) and VONAGE_SIGNATURE_METHOD (default md5hash,
 * Vonage's default; must match the dashboard). An unknown method is a CallbackConfigError.
 */
export function vonageCallbackConfigFromEnv(env: Record<string, unknown>): VonageCallbackConfig | null {
  const signatureSecret = readSecret(env, 'VONAGE_SIGNATURE_SECRET');
  if (!signatureSecret) return null;
  const name = (readSecret(env, 'VONAGE_SIGNATURE_METHOD') ?? 'md5hash').toLowerCase().replace(/[\s_-]/g, '');
  const method = METHOD_NAMES[name];
  if (!method)
    throw new CallbackConfigError(
      'vonage',
      'VONAGE_SIGNATURE_METHOD',
      'must be one of md5hash, md5hmac, sha1hmac, sha256hmac, sha512hmac',
    );
  return { signatureSecret, method };
}

/** The string Vonage signs: every param but `sig`, sorted by name, as `&name=value`. */
export function vonageSignedString(params: URLSearchParams): string {
  const names = [...new Set(params.keys())].filter((name) => name !== 'sig').sort();
  return names.map((name) => `&${name}=${(params.get(name) ?? '').replace(/[&=]/g, '_')}`).join('');
}

/** Computes the hex signature for the params with the configured method. */
export async function vonageSignature(
  params: URLSearchParams,
  config: VonageCallbackConfig,
): Promise<string> {
  const signed = vonageSignedString(params);
  if (config.method === 'md5hash') return toHex(await digest('MD5', signed + config.signatureSecret));
  return toHex(await hmac(HMAC_HASHES[config.method], config.signatureSecret, signed));
}

/**
 * The DLR's params: the query string for GET receipts, the form or JSON body for POST ones
 * (whichever the dashboard's "HTTP Method" setting chose).
 */
function receiptParams(request: CallbackRequest): URLSearchParams {
  if (request.method.toUpperCase() === 'GET') return new URL(request.url).searchParams;
  return readParams(request.body, request.headers.get('content-type'));
}

/**
 * Verifies `sig` over the other params, then the signed `timestamp` (5 minutes) and, with a
 * replay guard, the signed `nonce` (or the signature when no nonce is sent).
 */
export function verifyVonageCallback(
  request: CallbackRequest,
  config: VonageCallbackConfig,
  nowMs: number,
  replay?: ReplayGuard,
): Promise<VerifyResult> {
  return neverThrows(async () => {
    const params = receiptParams(request);
    const sig = params.get('sig');
    if (!sig) return refuse('missing signature');
    const timestamp = parseUnixSeconds(params.get('timestamp'));
    if (timestamp === undefined) return refuse('malformed timestamp');
    if (!isFresh(timestamp, nowMs)) return refuse('stale timestamp');
    // Hex case differs between methods (MD5 hash lower, HMACs upper), so compare lower-cased.
    const expected = await vonageSignature(params, config);
    if (!(await constantTimeEqual(expected, sig.trim().toLowerCase()))) return refuse('signature mismatch');
    const replayKey = params.get('nonce') || sig.trim().toLowerCase();
    return spendOnce(replay, `vonage:${replayKey}`);
  });
}

const VONAGE_CODES: SmsErrorCodes = {
  /** Illegal Number: "the user has requested not to receive messages from a specific service". */
  optedOut: '9',
  /** err-codes Vonage documents as permanent: "should be removed from your database". */
  permanentAddress: new Set([
    '3', // Absent Subscriber - Permanent: the number is no longer active
    '4', // Call Barred by User
  ]),
};

/**
 * Maps `status`: delivered -> delivered; failed/rejected/expired -> failed (suppress for err-code
 * 3 and 4, unsubscribed for 9); accepted/buffered/unknown are not final. `client-ref` is Herald's
 * delivery id, `messageId` the id of the (part of the) message. `message-timestamp` is UTC.
 * The body is the POST body; for GET receipts pass the URL's query string (without `?`).
 */
export function parseVonageCallback(body: string, headers: Headers): CallbackEvent[] {
  return parseSafely(() => {
    const params = Object.fromEntries(readParams(body, headers.get('content-type')));
    const status = (params.status ?? '').toLowerCase();
    const errCode = codeField(params, 'err-code');
    const timestamp = params['message-timestamp'];
    const base = {
      deliveryId: stringField(params, 'client-ref'),
      providerMessageId: stringField(params, 'messageId'),
      occurredAt: isoFromDateString(timestamp ? `${timestamp.replace(' ', 'T')}Z` : undefined),
    };
    if (status === 'delivered') return [event('delivered', base)];
    if (status !== 'failed' && status !== 'rejected' && status !== 'expired') return [];
    const reason = `vonage ${status}${errCode ? ` err-code ${errCode}` : ''}`;
    return [smsFailureEvent(VONAGE_CODES, errCode, { ...base, reason })];
  });
}

export const vonageCallback: CallbackHandler<VonageCallbackConfig> = {
  configFromEnv: vonageCallbackConfigFromEnv,
  verify: verifyVonageCallback,
  parse: parseVonageCallback,
};
