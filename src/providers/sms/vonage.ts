// Vonage SMS API: https://developer.vonage.com/en/api/sms#send-an-sms
// (status codes: https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms)
import type { AddressOf } from '../../domain/address';
import type { HttpAnswer, HttpCall } from '../http-call';
import { classOfStatus, type ErrorClass, resultOfClass, retryable, sent, shortReason } from '../results';
import type { ProviderEnv, SendRequest, SendResult } from '../types';
import { readBaseUrl, requireVars } from '../vars';
import { httpSmsProvider, SMS_TIMEOUT_MS } from './common';

type SmsAddress = AddressOf<'sms'>;

export interface VonageConfig {
  apiKey: string;
  apiSecret: string;
  /** Sender number (E.164 digits) or alphanumeric sender id. */
  from: string;
  /** Without trailing slash; https://rest.nexmo.com unless VONAGE_BASE_URL is set. */
  baseUrl: string;
  /** Delivery-receipt URL, `{PUBLIC_BASE_URL}/v1/webhooks/vonage` when PUBLIC_BASE_URL is set. */
  callback?: string;
}

export const VONAGE_DEFAULT_BASE_URL = 'https://rest.nexmo.com';

/**
 * One recipient per request, `client-ref` up to 40 characters
 * (https://developer.vonage.com/en/api/sms#send-an-sms), 30 API requests per second by default
 * (https://api.support.vonage.com/hc/en-us/articles/203993598).
 */
export const VONAGE_LIMITS = {
  timeoutMs: SMS_TIMEOUT_MS,
  recipientsPerRequest: 1,
  documentedRatePerSecond: 30,
  fields: { clientRef: 40 },
};

/** Reads VONAGE_API_KEY, VONAGE_API_SECRET, VONAGE_FROM (required), VONAGE_BASE_URL, PUBLIC_BASE_URL. */
export function vonageConfigFromEnv(env: ProviderEnv): VonageConfig {
  const vars = requireVars(env, 'vonage', ['VONAGE_API_KEY', 'VONAGE_API_SECRET', 'VONAGE_FROM']);
  const publicBaseUrl = readBaseUrl(env, 'PUBLIC_BASE_URL');
  return {
    apiKey: vars.VONAGE_API_KEY,
    apiSecret: vars.VONAGE_API_SECRET,
    from: vars.VONAGE_FROM,
    baseUrl: readBaseUrl(env, 'VONAGE_BASE_URL') ?? VONAGE_DEFAULT_BASE_URL,
    ...(publicBaseUrl ? { callback: `${publicBaseUrl}/v1/webhooks/vonage` } : {}),
  };
}

/** GSM 03.38 default alphabet and its extension table (the extension costs two septets). */
const GSM7_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM7_EXTENSION = '\f^{}\\[~]|€';
const GSM7 = new Set([...GSM7_BASIC, ...GSM7_EXTENSION]);

/** True when every character fits the GSM-7 alphabet, so Vonage can send it as `type=text`. */
export function isGsm7(text: string): boolean {
  for (const char of text) if (!GSM7.has(char)) return false;
  return true;
}

/**
 * Builds the send-an-sms POST (form-encoded). `to` is E.164 without the leading '+', as the API
 * documents it; `client-ref` carries the delivery id so delivery receipts can be matched.
 */
export function buildVonageRequest(config: VonageConfig, request: SendRequest<SmsAddress>): HttpCall {
  const text = request.message.text ?? '';
  const form = new URLSearchParams();
  form.set('api_key', config.apiKey);
  form.set('api_secret', config.apiSecret);
  form.set('from', config.from);
  form.set('to', request.address.phone.replace(/^\+/, ''));
  form.set('text', text);
  if (!isGsm7(text)) form.set('type', 'unicode');
  form.set('client-ref', request.deliveryId.slice(0, VONAGE_LIMITS.fields.clientRef));
  if (config.callback) form.set('callback', config.callback);
  return {
    url: `${config.baseUrl}/sms/json`,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
  };
}

/** The documented `messages[].status` table; anything not listed is permanent. */
const VONAGE_STATUS: Record<string, ErrorClass> = {
  '1': 'retryable', // Throttled
  '2': 'permanent', // Missing parameters
  '3': 'permanent', // Invalid parameters
  '4': 'configError', // Invalid credentials
  '5': 'retryable', // Internal error
  '6': 'permanent', // Invalid message (e.g. unrecognised number prefix)
  '7': 'invalidAddress', // Number barred
  '8': 'configError', // Partner account barred (suspended)
  '9': 'retryable', // Partner quota violation: "Top-up and retry"
  '10': 'retryable', // Too many existing binds: "Back-off and retry"
  '11': 'configError', // Account not enabled for HTTP (SMPP only)
  '12': 'permanent', // Message too long
  '14': 'configError', // Invalid signature
  '15': 'configError', // Invalid sender address (unauthorised `from`)
  '22': 'permanent', // Invalid network code
  '23': 'configError', // Invalid callback URL
  '29': 'configError', // Non-whitelisted destination (demo account)
  '32': 'configError', // Signature and API secret disallowed
  '33': 'invalidAddress', // Number de-activated
};

interface VonageMessage {
  status?: string;
  'message-id'?: string;
  'error-text'?: string;
}

/** Maps a Vonage answer (HTTP 200 with per-message statuses) to a SendResult. */
export function classifyVonageAnswer(answer: HttpAnswer): SendResult {
  const { status } = answer;
  if (!answer.ok) {
    return resultOfClass(
      classOfStatus(status),
      `vonage HTTP ${status}`,
      String(status),
      answer.retryAfterSeconds,
    );
  }
  const messages = (answer.json as { messages?: VonageMessage[] } | undefined)?.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    return retryable('vonage answered without message statuses');
  }
  // A long text is split into parts, each with its own status; one failed part fails the delivery.
  const failed = messages.find((message) => message.status !== '0');
  if (!failed) return sent(messages[0]?.['message-id']);
  const code = String(failed.status ?? 'unknown');
  const reason = shortReason(`vonage status ${code}: ${failed['error-text'] ?? 'unknown error'}`);
  return resultOfClass(VONAGE_STATUS[code] ?? 'permanent', reason, code);
}

/** Vonage (Nexmo) SMS API on the sms channel. */
export const vonage = httpSmsProvider({
  name: 'vonage',
  limits: VONAGE_LIMITS,
  configFromEnv: vonageConfigFromEnv,
  build: buildVonageRequest,
  classify: classifyVonageAnswer,
});
