// Resend webhooks, delivered and signed by Svix.
// Signature: https://resend.com/docs/webhooks/verify-webhooks-requests and
// https://docs.svix.com/receiving/verifying-payloads/how-manual (svix-signature holds space-separated
// `v1,<base64 HMAC-SHA256>` entries over `${svix-id}.${svix-timestamp}.${body}`, keyed with the
// base64-decoded part of the `whsec_` secret; timestamps older than 5 minutes are refused)
// Events: https://resend.com/docs/dashboard/webhooks/event-types

import { fromBase64, toBase64 } from '../lib/encoding';
import {
  asRecord,
  codeField,
  event,
  hmac,
  isFresh,
  isoFromDateString,
  matchesAny,
  neverThrows,
  parseJson,
  parseSafely,
  parseUnixSeconds,
  plainEvent,
  readSecret,
  refuse,
  spendOnce,
  stringField,
} from './shared';
import type { CallbackEvent, CallbackHandler, CallbackRequest, ReplayGuard, VerifyResult } from './types';
import { CallbackConfigError } from './types';

export interface ResendCallbackConfig {
  /** The HMAC key: the base64-decoded part of the `whsec_...` signing secret. */
  key: Uint8Array;
}

/** Reads RESEND_WEBHOOK_SECRET (`whsec_...`); null when unset, CallbackConfigError when not base64. */
export function resendCallbackConfigFromEnv(env: Record<string, unknown>): ResendCallbackConfig | null {
  const secret = readSecret(env, 'RESEND_WEBHOOK_SECRET');
  if (!secret) return null;
  const key = fromBase64(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret);
  if (!key || key.length === 0)
    throw new CallbackConfigError('resend', 'RESEND_WEBHOOK_SECRET', 'is not a whsec_ base64 secret');
  return { key };
}

/**
 * Verifies the Svix headers. With a replay guard, the same (svix-id, timestamp) pair is refused a
 * second time: Svix keeps the id across retries but re-signs each attempt with a new timestamp,
 * so only a copied request repeats both.
 */
export function verifyResendCallback(
  request: CallbackRequest,
  config: ResendCallbackConfig,
  nowMs: number,
  replay?: ReplayGuard,
): Promise<VerifyResult> {
  return neverThrows(async () => {
    const id = request.headers.get('svix-id');
    const timestampText = request.headers.get('svix-timestamp');
    const signatures = request.headers.get('svix-signature');
    if (!id || !timestampText || !signatures) return refuse('missing signature');
    const timestamp = parseUnixSeconds(timestampText);
    if (timestamp === undefined) return refuse('malformed timestamp');
    if (!isFresh(timestamp, nowMs)) return refuse('stale timestamp');
    const expected = toBase64(await hmac('SHA-256', config.key, `${id}.${timestampText}.${request.body}`));
    // Several entries appear while a secret is rotated; other versions (v1a) are not ours to check.
    const offered = signatures
      .split(' ')
      .filter((entry) => entry.startsWith('v1,'))
      .map((entry) => entry.slice('v1,'.length));
    if (offered.length === 0 || !(await matchesAny(expected, offered))) return refuse('signature mismatch');
    return spendOnce(replay, `resend:${id}:${timestampText}`);
  });
}

/**
 * Herald's delivery id when the email was sent with a `delivery_id` tag. Resend echoes tags as
 * an object; the array form `[{ name, value }]` of the send API is read too.
 */
function deliveryIdFromTags(tags: unknown): string | undefined {
  if (Array.isArray(tags)) {
    const tag = tags.map(asRecord).find((item) => item?.name === 'delivery_id');
    return stringField(tag, 'value');
  }
  return stringField(asRecord(tags), 'delivery_id');
}

const PLAIN: Readonly<Record<string, CallbackEvent['status']>> = {
  'email.delivered': 'delivered',
  'email.opened': 'opened',
  'email.clicked': 'clicked',
};

/**
 * Maps `type`: email.delivered -> delivered; email.bounced (Resend: "permanently rejected") ->
 * bounced + suppress, unless `bounce.type` says Transient/Undetermined, then failed;
 * email.complained -> complained + suppress; email.failed -> failed; email.suppressed (the
 * address is on Resend's suppression list) -> failed + suppress; opened/clicked as such.
 * email.sent, email.delivery_delayed, email.scheduled and non-email events carry no outcome.
 */
export function parseResendCallback(body: string, _headers: Headers): CallbackEvent[] {
  return parseSafely(() => {
    const payload = asRecord(parseJson(body));
    const data = asRecord(payload?.data);
    if (!payload || !data) return [];
    const base = {
      deliveryId: deliveryIdFromTags(data.tags),
      providerMessageId: stringField(data, 'email_id'),
      occurredAt: isoFromDateString(payload.created_at),
    };
    const plain = plainEvent(PLAIN, payload.type, base);
    if (plain) return [plain];
    switch (payload.type) {
      case 'email.bounced': {
        const bounce = asRecord(data.bounce);
        const type = codeField(bounce, 'type');
        const subType = codeField(bounce, 'subType');
        const reason = ['resend bounce', type, subType].filter(Boolean).join(' ');
        if (type !== undefined && type !== 'Permanent') return [event('failed', { ...base, reason })];
        return [event('bounced', { ...base, reason, suppressAddress: true })];
      }
      case 'email.complained':
        return [event('complained', { ...base, reason: 'resend complaint', suppressAddress: true })];
      case 'email.failed': {
        const failedReason = codeField(asRecord(data.failed), 'reason');
        return [
          event('failed', { ...base, reason: `resend failed${failedReason ? ` ${failedReason}` : ''}` }),
        ];
      }
      case 'email.suppressed':
        return [event('failed', { ...base, reason: 'resend suppressed', suppressAddress: true })];
      default:
        return [];
    }
  });
}

export const resendCallback: CallbackHandler<ResendCallbackConfig> = {
  configFromEnv: resendCallbackConfigFromEnv,
  verify: verifyResendCallback,
  parse: parseResendCallback,
};
