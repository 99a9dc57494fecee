import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { AppError } from '../../domain/errors';
import { verificationSecrets } from '../../lib/signed-token';
import type { Services } from '../container';

/** What an end user's inbox token grants: one user's inbox, until it expires. */
export interface InboxGrant {
  userId: string;
  expiresAt: number;
}

export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;
const AUDIENCE = 'herald:inbox';
const ISSUER = 'herald';
const encoder = new TextEncoder();

/**
 * The HS256 key of inbox tokens: HMAC-SHA256 of a fixed label under SIGNING_SECRET (or one it
 * replaced), so an inbox token is never valid as any other signed token of Herald's.
 */
async function tokenKey(secret: string): Promise<Uint8Array> {
  const hmac = await crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  return new Uint8Array(await crypto.subtle.sign('HMAC', hmac, encoder.encode('herald inbox token v1')));
}

function signingSecret(services: Services): string {
  const secret = services.env.SIGNING_SECRET;
  if (!secret)
    throw new AppError(503, 'misconfigured', 'SIGNING_SECRET is not set: inbox tokens cannot be signed');
  return secret;
}

/** A token (JWT, HS256) for `userId`'s inbox, valid `ttlSeconds`. */
export async function mintInboxToken(
  services: Services,
  userId: string,
  ttlSeconds: number,
): Promise<{ token: string; expiresAt: string }> {
  const now = Math.floor(services.now() / 1000);
  const exp = now + ttlSeconds;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setAudience(AUDIENCE)
    .setIssuer(ISSUER)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(await tokenKey(signingSecret(services)));
  return { token, expiresAt: new Date(exp * 1000).toISOString() };
}

/**
 * The grant of a token signed with SIGNING_SECRET or one it replaced. 401 `token_expired` for an
 * expired one, 401 `unauthorized` for anything else.
 */
export async function verifyInboxToken(services: Services, token: string | null): Promise<InboxGrant> {
  if (!token)
    throw new AppError(401, 'unauthorized', 'an inbox token is required (Authorization: Bearer <token>)');
  const currentDate = new Date(services.now());
  for (const secret of verificationSecrets(
    services.env.SIGNING_SECRET,
    services.env.SIGNING_SECRET_PREVIOUS,
  )) {
    try {
      const { payload } = await jwtVerify(token, await tokenKey(secret), {
        algorithms: ['HS256'],
        audience: AUDIENCE,
        issuer: ISSUER,
        currentDate,
        requiredClaims: ['sub', 'exp'],
      });
      return { userId: payload.sub as string, expiresAt: (payload.exp as number) * 1000 };
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) {
        throw new AppError(
          401,
          'token_expired',
          'the inbox token has expired: ask your server for a new one',
        );
      }
      // another secret may have signed it
    }
  }
  throw new AppError(401, 'unauthorized', 'invalid inbox token');
}
