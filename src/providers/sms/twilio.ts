// Twilio Messages API: https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
// (error codes: https://www.twilio.com/docs/api/errors)
import type { AddressOf } from '../../domain/address';
import { basicAuth, type HttpAnswer, type HttpCall, stringField } from '../http-call';
import { classOfStatus, type ErrorClass, resultOfClass, sent, shortReason } from '../results';
import { MissingCredentialsError, type ProviderEnv, type SendRequest, type SendResult } from '../types';
import { readBaseUrl, readVar, requireVars } from '../vars';
import { httpSmsProvider, SMS_TIMEOUT_MS } from './common';

type SmsAddress = AddressOf<'sms'>;

export interface TwilioConfig {
  accountSid: string;
  authToken: string;
  /** The sender: a Messaging Service (preferred, it pools numbers) or a From number/sender id. */
  sender: { messagingServiceSid: string } | { from: string };
  /** Without trailing slash; https://api.twilio.com unless TWILIO_BASE_URL is set. */
  baseUrl: string;
  /** `{PUBLIC_BASE_URL}/v1/webhooks/twilio` when PUBLIC_BASE_URL is set (`?deliveryId=` is added per message). */
  statusCallback?: string;
}

export const TWILIO_DEFAULT_BASE_URL = 'https://api.twilio.com';

/**
 * One recipient per Message resource, a body of at most 1,600 characters
 * (https://www.twilio.com/docs/messaging/api/message-resource, error 21617). Throughput is per
 * sender (long code, toll-free, short code), so no account rate is declared.
 */
export const TWILIO_LIMITS = { timeoutMs: SMS_TIMEOUT_MS, recipientsPerRequest: 1, fields: { body: 1600 } };

/**
 * Reads TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (required), TWILIO_MESSAGING_SERVICE_SID or
 * TWILIO_FROM (one required), TWILIO_BASE_URL and PUBLIC_BASE_URL (optional).
 */
export function twilioConfigFromEnv(env: ProviderEnv): TwilioConfig {
  const messagingServiceSid = readVar(env, 'TWILIO_MESSAGING_SERVICE_SID');
  const from = readVar(env, 'TWILIO_FROM');
  const missing = ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN'].filter(
    (name) => readVar(env, name) === undefined,
  );
  if (!messagingServiceSid && !from) missing.push('TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID');
  if (missing.length > 0) throw new MissingCredentialsError('twilio', missing);
  const vars = requireVars(env, 'twilio', ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN']);
  const publicBaseUrl = readBaseUrl(env, 'PUBLIC_BASE_URL');
  return {
    accountSid: vars.TWILIO_ACCOUNT_SID,
    authToken: vars.TWILIO_AUTH_TOKEN,
    sender: messagingServiceSid ? { messagingServiceSid } : { from: from as string },
    baseUrl: readBaseUrl(env, 'TWILIO_BASE_URL') ?? TWILIO_DEFAULT_BASE_URL,
    ...(publicBaseUrl ? { statusCallback: `${publicBaseUrl}/v1/webhooks/twilio` } : {}),
  };
}

/** Builds the Create Message POST: Basic auth SID:token, form-encoded To, sender, Body, StatusCallback?deliveryId=. */
export function buildTwilioRequest(config: TwilioConfig, request: SendRequest<SmsAddress>): HttpCall {
  const form = new URLSearchParams();
  form.set('To', request.address.phone);
  if ('messagingServiceSid' in config.sender)
    form.set('MessagingServiceSid', config.sender.messagingServiceSid);
  else form.set('From', config.sender.from);
  form.set('Body', request.message.text ?? '');
  // The delivery id rides in the callback URL, which Twilio signs with the rest of the request.
  if (config.statusCallback)
    form.set(
      'StatusCallback',
      `${config.statusCallback}?deliveryId=${encodeURIComponent(request.deliveryId)}`,
    );
  return {
    url: `${config.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(config.accountSid)}/Messages.json`,
    method: 'POST',
    headers: {
      authorization: basicAuth(config.accountSid, config.authToken),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: form.toString(),
  };
}

/** Twilio error codes whose meaning is clear enough to act on (https://www.twilio.com/docs/api/errors/<code>). */
const TWILIO_ERRORS: Record<number, ErrorClass> = {
  21610: 'optOut', // Attempt to send to unsubscribed recipient (replied STOP)
  21211: 'invalidAddress', // Invalid 'To' phone number
  21614: 'invalidAddress', // 'To' number is not a valid mobile number
  21635: 'invalidAddress', // 'To' number cannot be a landline
  21265: 'invalidAddress', // 'To' number cannot be a short code
  21612: 'permanent', // 'To' not reachable with this To/From combination
  21617: 'permanent', // Body exceeds the 1600 character limit
  21602: 'permanent', // Message body is required
  21408: 'configError', // Permission to send to this region is not enabled (geo permissions)
  21608: 'configError', // Trial account: 'To' number is not verified
  20003: 'configError', // Authentication failed
  20404: 'configError', // Resource not found (wrong account SID)
  21212: 'configError', // Invalid 'From' number
  21606: 'configError', // 'From' is not a valid message-capable Twilio number
  21659: 'configError', // 'From' is not a Twilio number / short code country mismatch
  21660: 'configError', // 'From' does not belong to the account
  21661: 'configError', // 'From' is not SMS-capable
  21611: 'retryable', // 'From' queue is full
  20429: 'retryable', // Too many requests
};

interface TwilioError {
  code?: number;
  message?: string;
}

/** Maps a Twilio answer to a SendResult by its documented error code, else by its status. */
export function classifyTwilioAnswer(answer: HttpAnswer): SendResult {
  const json = answer.json;
  if (answer.ok) return sent(stringField(json, 'sid'));
  const error = (json && typeof json === 'object' ? json : {}) as TwilioError;
  const code = typeof error.code === 'number' ? String(error.code) : String(answer.status);
  const reason = shortReason(`twilio ${code}: ${error.message ?? `HTTP ${answer.status}`}`);
  const known = typeof error.code === 'number' ? TWILIO_ERRORS[error.code] : undefined;
  return resultOfClass(known ?? classOfStatus(answer.status), reason, code, answer.retryAfterSeconds);
}

/** Twilio Programmable Messaging on the sms channel. */
export const twilio = httpSmsProvider({
  name: 'twilio',
  limits: TWILIO_LIMITS,
  configFromEnv: twilioConfigFromEnv,
  build: buildTwilioRequest,
  classify: classifyTwilioAnswer,
});
