import { UserKey } from '../../lib/user-key';
import type { Services } from '../container';
import { cipherFor } from '../encryption';

/** The keys of those of `userIds` that have one (an erased user has none, ever again). */
export async function existingUserKeys(
  services: Services,
  userIds: readonly string[],
): Promise<Map<string, UserKey>> {
  return unwrapAll(services, await services.userKeys.wrappedFor(userIds));
}

/**
 * The keys of `userIds`, the missing ones made and stored before they are returned: nothing is
 * ever sealed with a key that is not stored. Two runs racing both read back the one stored first.
 * An erased user id gets none (its tombstone stays), so rows read before its erasure are never
 * sealed with a new key.
 */
export async function ensureUserKeys(
  services: Services,
  userIds: readonly string[],
): Promise<Map<string, UserKey>> {
  const wrapped = await services.userKeys.wrappedFor(userIds);
  const missing = [...new Set(userIds)].filter((userId) => !wrapped.has(userId));
  if (missing.length === 0) return unwrapAll(services, wrapped);
  const cipher = await cipherFor(services.env);
  const now = services.now();
  const made = await Promise.all(
    missing.map(async (userId) => ({ userId, wrapped: (await UserKey.generate(userId, cipher)).wrapped })),
  );
  await services.commit(services.userKeys.insertStatements(made, now));
  return existingUserKeys(services, userIds);
}

async function unwrapAll(
  services: Services,
  wrapped: Map<string, string | null>,
): Promise<Map<string, UserKey>> {
  const cipher = await cipherFor(services.env);
  const keys = new Map<string, UserKey>();
  for (const [userId, value] of wrapped) {
    if (value !== null) keys.set(userId, await UserKey.unwrap(userId, value, cipher));
  }
  return keys;
}
