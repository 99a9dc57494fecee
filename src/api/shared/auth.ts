import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { matchedRoutes } from 'hono/route';
import type { Env } from '../../config/env';
import { AppError } from '../../domain/errors';
import { log } from '../../lib/log';
import {
  ADMIN_PRINCIPAL,
  type ApiKeyPrincipal,
  isAdminKey,
  type KeyRefusal,
  verifyApiKey,
} from '../../services/access/api-keys';
import { errorResponse } from './errors';
import { grants, requiredScope, type Scope, toOpenApiPath } from './scopes';
import type { AppEnv } from './types';

/** Reads `Authorization: Bearer <key>`; null when absent or malformed. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1] ?? null;
}

// --- Novu-compatible routes (api/routes/novu.ts) -------------------------------------------------
/**
 * The paths that also take `Authorization: ApiKey <key>`, the scheme Novu's SDK (@novu/api) sends:
 * only the Novu-compatible routes, so every other route keeps one documented scheme (Bearer) and a
 * Herald client never depends on Novu's. The key itself is the same Herald API key.
 */
export const API_KEY_SCHEME_PATHS = /^\/(?:v1\/events|v2\/subscribers|v2\/topics)(?:\/|$)/;

/** Reads `Authorization: ApiKey <key>`; null when absent or malformed. */
export function apiKeySchemeToken(header: string | undefined): string | null {
  const match = /^ApiKey\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1] ?? null;
}

/** The key a request presents: Bearer everywhere, or ApiKey on the Novu-compatible paths. */
function presentedKey(c: Context<AppEnv>): string | null {
  const header = c.req.header('Authorization');
  return bearerToken(header) ?? (API_KEY_SCHEME_PATHS.test(c.req.path) ? apiKeySchemeToken(header) : null);
}
// --- end Novu-compatible routes ------------------------------------------------------------------

/** Seconds a client is told to wait after a 429: the limiter's window. */
export const RATE_LIMIT_RETRY_AFTER_SECONDS = 60;

/**
 * Environments where the per-key limit is off, so the test suite, `wrangler dev` and the
 * benchmarks (thousands of requests a minute on the admin key) measure Herald, not the limiter.
 * Any other value, or none, is limited.
 */
const UNLIMITED_ENVIRONMENTS = new Set(['development', 'test']);

const REFUSALS: Record<KeyRefusal, string> = {
  invalid: 'invalid API key',
  revoked: 'API key revoked',
  expired: 'API key expired',
};

function unauthorized(c: Context<AppEnv>, message: string, invalidToken: boolean) {
  c.header(
    'WWW-Authenticate',
    invalidToken
      ? `Bearer realm="herald", error="invalid_token", error_description="${message}"`
      : 'Bearer realm="herald"',
  );
  return errorResponse(c, 401, 'unauthorized', message);
}

async function authenticate(c: Context<AppEnv>, key: string): Promise<ApiKeyPrincipal | KeyRefusal> {
  if (await isAdminKey(c.env, key)) return ADMIN_PRINCIPAL;
  const check = await verifyApiKey(c.var.services.apiKeys, key, Date.now(), (promise) =>
    waitUntil(c, promise),
  );
  return check.ok ? check.principal : check.refusal;
}

function waitUntil(c: Context<AppEnv>, promise: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(promise);
  } catch {
    // No execution context (a bare app.request in a test): the promise still runs.
  }
}

/** False when the key is over its per-minute budget. No binding, or a dev/test env: no limit. */
async function withinRateLimit(env: Env, principal: ApiKeyPrincipal): Promise<boolean> {
  const limiter = env.API_RATE_LIMITER;
  if (!limiter || UNLIMITED_ENVIRONMENTS.has(env.ENVIRONMENT ?? '')) return true;
  try {
    return (await limiter.limit({ key: principal.id })).success;
  } catch (error) {
    // The limiter is a guard rail, not a dependency: when it fails, requests still go through.
    log('warn', 'api.rate_limiter_failed', { error: error instanceof Error ? error.message : 'unknown' });
    return true;
  }
}

/**
 * The scopes the matched route needs. `null` when no handler matches (the request is a 404).
 * Every handler that matches counts, so two overlapping routes need both their scopes.
 */
function scopesFor(c: Context<AppEnv>): Scope[] | null {
  // Middleware registered with use() has method ALL; route handlers carry their method.
  const handlers = matchedRoutes(c).filter((route) => route.method !== 'ALL');
  if (handlers.length === 0) return null;
  return [...new Set(handlers.map((route) => requiredScope(route.method, toOpenApiPath(route.path))))];
}

/**
 * Every `/v1` route (and `/metrics`): a valid key (401 otherwise), within its rate limit (429),
 * holding the route's scope from src/api/scopes.ts (403). The key's identity and send
 * restrictions are left in `c.var.apiKey` for the routes.
 */
export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.path.startsWith('/v1/webhooks/')) return next(); // provider callbacks carry a signature instead
  const key = presentedKey(c);
  if (!key) {
    const how = API_KEY_SCHEME_PATHS.test(c.req.path) ? 'ApiKey <key> or Bearer <key>' : 'Bearer <key>';
    return unauthorized(c, `missing API key: send Authorization: ${how}`, false);
  }
  const principal = await authenticate(c, key);
  if (typeof principal === 'string') return unauthorized(c, REFUSALS[principal], true);

  if (!(await withinRateLimit(c.env, principal))) {
    c.header('Retry-After', String(RATE_LIMIT_RETRY_AFTER_SECONDS));
    return errorResponse(
      c,
      429,
      'rate_limited',
      `too many requests for this API key; retry in ${RATE_LIMIT_RETRY_AFTER_SECONDS} seconds`,
    );
  }

  const needed = scopesFor(c);
  // No route answers here: say so now rather than run any later handler without a scope check.
  if (!needed) return errorResponse(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`);
  const missing = needed.find((scope) => !grants(principal.scopes, scope));
  if (missing) return errorResponse(c, 403, 'forbidden', `this key lacks the scope ${missing}`);

  c.set('apiKey', principal);
  await next();
});

/** What a send asks for, as far as a key's restrictions go. */
export interface SendRequest {
  type: string;
  source?: string | null;
}

/**
 * Refuses (403) a send whose type or source the calling key may not use. `inputs` are the
 * notifications of one request in request order; `listField` names the body's array when there is
 * one (`notifications` for the batch route), so the error names `notifications[3].type`. A key
 * restricted to sources refuses a notification without a source. Call it in the send routes once
 * the body is parsed, before anything is written.
 */
export function assertSendAllowed(
  c: Context<AppEnv>,
  inputs: readonly SendRequest[],
  listField?: string,
): void {
  const principal = c.get('apiKey');
  if (!principal) throw new AppError(401, 'unauthorized', 'missing API key');
  const problem = sendRestrictionProblem(principal, inputs, listField);
  if (problem) throw new AppError(403, 'forbidden', problem.message, [problem]);
}

/** The first input the key may not send, as `{ field, message }`; null when every one is allowed. */
export function sendRestrictionProblem(
  principal: Pick<ApiKeyPrincipal, 'types' | 'sources'>,
  inputs: readonly SendRequest[],
  listField?: string,
): { field: string; message: string } | null {
  for (const [index, input] of inputs.entries()) {
    const at = listField ? `${listField}[${index}].` : '';
    if (principal.types && !principal.types.includes(input.type)) {
      return { field: `${at}type`, message: `this key may not send notifications of type "${input.type}"` };
    }
    if (principal.sources && !(input.source && principal.sources.includes(input.source))) {
      return {
        field: `${at}source`,
        message: input.source
          ? `this key may not send as source "${input.source}"`
          : `this key must name its source (one of: ${principal.sources.join(', ')})`,
      };
    }
  }
  return null;
}
