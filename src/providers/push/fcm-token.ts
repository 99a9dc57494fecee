// Google OAuth 2.0 for a service account, as FCM needs it:
// https://developers.google.com/identity/protocols/oauth2/service-account
import { importPKCS8, SignJWT } from 'jose';
import { isRetryableStatus } from '../../lib/http';
import {
  type CallLimits,
  callHttp,
  type HttpAnswer,
  type HttpCall,
  isHttpAnswer,
  stringField,
} from '../http-call';
import { permanent, resultOfClass, retryable, shortReason } from '../results';
import type { ProviderDeps, SendResult } from '../types';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/** Google issues one-hour access tokens; reuse one for at most 55 minutes. */
export const FCM_ACCESS_TOKEN_MAX_AGE_MS = 55 * 60_000;

/** A refreshed token is treated as expiring this much before Google says it does. */
const EXPIRY_MARGIN_SECONDS = 300;

/** The parts of a service account the token exchange reads. */
export interface ServiceAccount {
  clientEmail: string;
  /** PKCS#8 PEM of the service account's RSA key. */
  privateKeyPem: string;
  /** The key's id, sent as the JWT `kid` so Google picks the right public key. */
  privateKeyId?: string;
  tokenUrl: string;
}

/** Signs the service account's JWT assertion (RS256) for the OAuth token endpoint. */
export async function signFcmAssertion(
  account: ServiceAccount,
  key: CryptoKey,
  nowMs: number,
): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  return new SignJWT({ scope: FCM_SCOPE })
    .setProtectedHeader({
      alg: 'RS256',
      typ: 'JWT',
      ...(account.privateKeyId ? { kid: account.privateKeyId } : {}),
    })
    .setIssuer(account.clientEmail)
    .setAudience(account.tokenUrl)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 3600)
    .sign(key);
}

/** Builds the token request exchanging a JWT assertion for an access token (pure). */
export function buildTokenRequest(account: ServiceAccount, assertion: string): HttpCall {
  const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion });
  return {
    url: account.tokenUrl,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  };
}

/** Maps a failed token-endpoint answer: bad credentials are config errors, outages retryable. */
export function classifyTokenFailure(answer: HttpAnswer): SendResult {
  const code = stringField(answer.json, 'error') ?? String(answer.status);
  const description = stringField(answer.json, 'error_description');
  const reason = shortReason(`Google OAuth ${answer.status} ${code}${description ? ` ${description}` : ''}`);
  const errorClass = isRetryableStatus(answer.status) ? 'retryable' : 'configError';
  return resultOfClass(errorClass, reason, code, answer.retryAfterSeconds);
}

/**
 * A token-endpoint failure said of the message: whatever became of the token request (even an
 * unknown outcome), the message itself never left, so it is retryable, never unknown.
 */
function unsentMessage(result: SendResult): SendResult {
  return result.kind === 'unknown' ? retryable(shortReason('Google OAuth', result.reason)) : result;
}

/** An access token, or the result to report instead of sending. */
export type TokenAnswer = { ok: true; token: string } | { ok: false; result: SendResult };

/**
 * The access token of one instance: fetched with a signed assertion through the shared HTTP
 * call, reused for 55 minutes. Only settled tokens are cached (never an in-flight fetch),
 * because a Worker must not await I/O that another request started.
 */
export function createAccessTokenSource(account: ServiceAccount, deps: ProviderDeps, limits: CallLimits) {
  let key: Promise<CryptoKey> | undefined;
  let current: { token: string; expiresAtMs: number } | undefined;

  const assertion = async (): Promise<string | undefined> => {
    try {
      key ??= importPKCS8(account.privateKeyPem, 'RS256');
      return await signFcmAssertion(account, await key, deps.now());
    } catch {
      key = undefined;
      return undefined;
    }
  };

  const fetchToken = async (): Promise<TokenAnswer> => {
    const signed = await assertion();
    if (signed === undefined) {
      const reason = 'FCM_SERVICE_ACCOUNT.private_key is not a usable RS256 PKCS#8 key';
      return { ok: false, result: permanent(reason, undefined, { configError: true }) };
    }
    const answer = await callHttp(deps, buildTokenRequest(account, signed), limits);
    if (!isHttpAnswer(answer)) return { ok: false, result: unsentMessage(answer) };
    if (!answer.ok) return { ok: false, result: classifyTokenFailure(answer) };
    const token = stringField(answer.json, 'access_token');
    if (!token) return { ok: false, result: retryable('Google OAuth answered without access_token') };
    const expiresIn = (answer.json as { expires_in?: unknown }).expires_in;
    const lifetimeMs =
      typeof expiresIn === 'number' ? (expiresIn - EXPIRY_MARGIN_SECONDS) * 1000 : Number.POSITIVE_INFINITY;
    current = {
      token,
      expiresAtMs: deps.now() + Math.max(0, Math.min(FCM_ACCESS_TOKEN_MAX_AGE_MS, lifetimeMs)),
    };
    return { ok: true, token };
  };

  return {
    async get(): Promise<TokenAnswer> {
      if (current && deps.now() < current.expiresAtMs) return { ok: true, token: current.token };
      return fetchToken();
    },
    drop(): void {
      current = undefined;
    },
  };
}
