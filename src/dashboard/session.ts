import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { CookieOptions } from 'hono/utils/cookie';
import type { Env } from '../config/env';
import { signToken, verificationSecrets, verifyToken } from '../lib/signed-token';

/**
 * The dashboard session: a cookie holding a token signed with `SIGNING_SECRET` for the purpose
 * `dashboard`, payload `{ sub: 'admin' }`, valid 12 hours. The admin key itself never leaves the
 * login form. Sessions are stateless: logging out clears the cookie. Rotating SIGNING_SECRET with
 * the old value in SIGNING_SECRET_PREVIOUS keeps sessions alive; without it, it ends them all.
 */
export const SESSION_COOKIE = 'herald_session';
export const SESSION_PURPOSE = 'dashboard';
export const SESSION_TTL_SECONDS = 12 * 3600;

const COOKIE_OPTIONS: CookieOptions = {
  httpOnly: true,
  secure: true,
  sameSite: 'Strict',
  path: '/dashboard',
};

/** The signing secret, or undefined when the deployment has none (the dashboard then refuses logins). */
export function sessionSecret(env: Env): string | undefined {
  return typeof env.SIGNING_SECRET === 'string' && env.SIGNING_SECRET.length > 0
    ? env.SIGNING_SECRET
    : undefined;
}

/** Signs a new session and sets its cookie. */
export async function startSession(c: Context, secret: string, nowMs: number): Promise<void> {
  const token = await signToken(
    secret,
    SESSION_PURPOSE,
    { sub: 'admin' },
    { expiresAtMs: nowMs + SESSION_TTL_SECONDS * 1000 },
  );
  setCookie(c, SESSION_COOKIE, token, { ...COOKIE_OPTIONS, maxAge: SESSION_TTL_SECONDS });
}

export function endSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, COOKIE_OPTIONS);
}

/**
 * True when the request carries an authentic, unexpired admin session: signed with SIGNING_SECRET,
 * or with a secret it replaced that SIGNING_SECRET_PREVIOUS still lists (a rotation does not log
 * anyone out; dropping the old secret from the list does).
 */
export async function hasSession(c: Context, env: Env, nowMs: number): Promise<boolean> {
  const secrets = verificationSecrets(env.SIGNING_SECRET, env.SIGNING_SECRET_PREVIOUS);
  const payload = await verifyToken(secrets, SESSION_PURPOSE, getCookie(c, SESSION_COOKIE), nowMs);
  return payload?.sub === 'admin';
}

/**
 * CSRF: a state-changing request must come from a page of this origin. Browsers send `Origin` on
 * every POST; a missing one is refused too. This backs up SameSite=Strict, which older browsers
 * and same-site subdomains do not honour.
 */
export function isSameOrigin(c: Context): boolean {
  const origin = c.req.header('Origin');
  return origin !== undefined && origin === new URL(c.req.url).origin;
}

/** A fresh nonce per response for the one inline stylesheet. */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

/** The dashboard's Content-Security-Policy: nothing loads but the nonce'd inline styles. */
export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}
