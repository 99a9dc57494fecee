import type { Env } from '../config/env';
import { AppError } from '../domain/errors';
import { FieldCipher } from '../lib/field-crypto';

/**
 * The personal-data cipher of this deployment (DATA_ENCRYPTION_KEY), built once per isolate and
 * secret. Without the secret Herald refuses to store personal data rather than store it in clear.
 */
const ciphers = new Map<string, Promise<FieldCipher>>();

export async function cipherFor(env: Env): Promise<FieldCipher> {
  const secret = typeof env.DATA_ENCRYPTION_KEY === 'string' ? env.DATA_ENCRYPTION_KEY : '';
  if (!secret) {
    throw new AppError(
      503,
      'encryption_not_configured',
      'DATA_ENCRYPTION_KEY is not set: Herald does not store personal data in clear',
    );
  }
  const blind =
    typeof env.BLIND_INDEX_KEY === 'string' && env.BLIND_INDEX_KEY ? env.BLIND_INDEX_KEY : undefined;
  const cacheKey = `${secret}\u0000${blind ?? ''}`;
  let cipher = ciphers.get(cacheKey);
  if (!cipher) {
    cipher = FieldCipher.fromSecret(secret, blind);
    ciphers.set(cacheKey, cipher);
    cipher.catch(() => ciphers.delete(cacheKey));
  }
  return cipher;
}
