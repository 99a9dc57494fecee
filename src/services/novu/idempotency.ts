import { AppError } from '../../domain/errors';
import { isId } from '../../domain/identifiers';
import { canonicalJson, sha256Hex } from '../../lib/crypto';
import type { Services } from '../container';

/*
 * Novu's `idempotency-key` header (docs.novu.co, "Idempotency"): within 24 hours, the same key with
 * the same body gets the same answer and does nothing twice; the same key with another body is a
 * 422. Novu's SDK sends a fresh key with every call (and the same one on its own retries), so the
 * cheap way is the one Herald already has: a trigger without a transactionId takes the key as its
 * notification id, Herald's own idempotency key (the same id and body replay, another body
 * conflicts). Only where the key cannot be the id (a transactionId is the id, a bulk request, an
 * upsert) is it written down: two rows of 24 hours in the home database's replay table, one for
 * the key and one for the key with the body's digest.
 */

/** Novu refuses longer keys with a 400. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** How long a key is remembered where it is written down: Novu's 24 hours. */
export const IDEMPOTENCY_TTL_SECONDS = 86_400;

/** Ids derived from a key stay this short, so a bulk request's `.<index>` still fits an id. */
const KEY_ID_MAX_LENGTH = 100;

/** A key Novu would refuse: longer than 255 characters (400, before anything is read). */
export function checkIdempotencyKey(key: string | undefined): void {
  if (key !== undefined && (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH)) {
    throw new AppError(400, 'bad_request', `idempotency-key: 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`, [
      { field: 'idempotency-key', message: `must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters` },
    ]);
  }
}

/**
 * The notification id an idempotency key stands for: the key itself when it is a valid Herald id
 * (the SDK's keys are), otherwise a digest of it. `index` numbers the events of a bulk request.
 */
export async function idFromKey(key: string, index?: number): Promise<string> {
  const base =
    isId(key) && key.length <= KEY_ID_MAX_LENGTH ? key : `idem_${(await sha256Hex(key)).slice(0, 40)}`;
  return index === undefined ? base : `${base}.${index}`;
}

/** The 422 Novu answers for a key used again with another body. */
export const keyReused = (key: string) =>
  new AppError(
    422,
    'idempotency_key_mismatch',
    `Request with key "${key}" is being reused for a different body`,
    [{ field: 'idempotency-key', message: 'this key was used with a different body in the last 24 hours' }],
  );

/**
 * Records `key` for this request (`scope` is the method and path, `body` what was sent). True when
 * the same key came with the same body before: the caller answers again, doing nothing twice.
 * Throws {@link keyReused} when the key came with another body; nothing is kept then.
 */
export async function claimIdempotencyKey(
  services: Services,
  key: string,
  scope: string,
  body: unknown,
): Promise<boolean> {
  const keyDigest = await sha256Hex(`novu-idempotency:${key}`);
  const bodyDigest = await sha256Hex(`${scope}\n${canonicalJson(body)}`);
  const replays = services.callbackReplays;
  if (await replays.seen(`novu:${keyDigest}:${bodyDigest}`, IDEMPOTENCY_TTL_SECONDS)) return true;
  if (await replays.seen(`novu:${keyDigest}`, IDEMPOTENCY_TTL_SECONDS)) {
    await replays.release();
    throw keyReused(key);
  }
  return false;
}

/**
 * Forgets what {@link claimIdempotencyKey} recorded in this request, when the request failed: a
 * failed request is not remembered, so its retry (fixed or not) runs again.
 */
export async function releaseIdempotencyKey(services: Services): Promise<void> {
  await services.callbackReplays.release();
}
