import { createMiddleware } from 'hono/factory';
import type { Env } from '../env';
import { timingSafeEqualStrings } from '../lib/crypto';
import { errorResponse } from './errors';
import type { AppEnv } from './types';

/** Reads `Authorization: Bearer <key>`; null when absent or malformed. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1] ?? null;
}

/** True when `key` is the bootstrap admin key (compared in constant time). */
export async function isAdminKey(env: Env, key: string): Promise<boolean> {
  return (
    typeof env.ADMIN_API_KEY === 'string' &&
    env.ADMIN_API_KEY.length > 0 &&
    timingSafeEqualStrings(key, env.ADMIN_API_KEY)
  );
}

/** Every `/v1` route needs a valid key; a missing or wrong one gets 401 in the error envelope. */
export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.path.startsWith('/v1/webhooks/')) return next(); // provider callbacks carry a signature instead
  const key = bearerToken(c.req.header('Authorization'));
  if (!key) {
    c.header('WWW-Authenticate', 'Bearer realm="herald"');
    return errorResponse(c, 401, 'unauthorized', 'missing API key: send Authorization: Bearer <key>');
  }
  if (!(await isAdminKey(c.env, key))) {
    c.header('WWW-Authenticate', 'Bearer realm="herald", error="invalid_token"');
    return errorResponse(c, 401, 'unauthorized', 'invalid API key');
  }
  await next();
});
