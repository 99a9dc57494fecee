import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import {
  checkIdempotencyKey,
  claimIdempotencyKey,
  releaseIdempotencyKey,
} from '../../services/novu/idempotency';
import { bearerToken } from '../shared/auth';
import type { ErrorBody } from '../shared/errors';
import { errorResponsesIn } from '../shared/responses';
import { ErrorSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';

/*
 * What the Novu-compatible routes share: their tag and security, Novu's error shape (and the
 * middleware that gives it), and Novu's `idempotency-key` header.
 */

export const NOVU_TAG = 'novu-compatible';

/**
 * Herald's API key, as `Bearer` or as Novu's `Authorization: ApiKey <key>` (api/shared/auth.ts):
 * either scheme is enough (two entries of the security list are alternatives).
 */
export const novuSecurity: Record<string, string[]>[] = [{ bearerAuth: [] }, { apiKeyAuth: [] }];

/** Appended to each Novu route's description. */
export const NOVU_AUTH =
  ' Takes the API key as Novu’s `Authorization: ApiKey <key>` (what Novu’s SDK sends) as well as `Bearer`; errors are Novu-shaped (`NovuError`) unless the caller used Bearer.';

const ConstraintSchema = z.object({ messages: z.array(z.string()), value: z.unknown().optional() });

/**
 * Novu's error body (its ErrorDto; a 422 adds `errors`, a 400 `type` and `errors: []`) with
 * Herald's envelope inside as `error`, so Novu's SDK raises it as its own error class and Herald's
 * code is still there to read.
 */
export const NovuErrorSchema = z
  .object({
    statusCode: z.number().int(),
    timestamp: z.string(),
    path: z.string(),
    message: z.string(),
    errors: z
      .record(z.string(), ConstraintSchema)
      .optional()
      .openapi({ description: '422 only: the failing fields, each with its messages' }),
    type: z.string().optional().openapi({ description: '400 only: what was wrong' }),
    error: ErrorSchema.shape.error,
  })
  .openapi('NovuError', {
    description:
      'Novu’s error shape, with Herald’s envelope as `error`. A caller that authenticates with `Bearer` (a Herald client) gets Herald’s envelope alone.',
  });

const novuErrorContent = { 'application/json': { schema: z.union([NovuErrorSchema, ErrorSchema]) } };

type NovuErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503;

const STANDARD: Record<NovuErrorStatus, string> = {
  400: 'Malformed JSON, or an idempotency-key longer than 255 characters',
  401: 'Missing or invalid API key',
  403: 'This key lacks the scope, or may not send this type',
  404: 'Not found',
  409: 'Conflict',
  413: 'Body over 100 KB',
  415: 'Body not sent as Content-Type: application/json',
  422: 'Validation failed: `errors` names each field (Novu’s ValidationErrorDto)',
  429: 'Over this key’s rate limit; Retry-After says when to try again',
  503: 'Temporarily unavailable; retry',
};

/** A Novu route's error responses, each in {@link NovuErrorSchema} (see its description). */
export const novuErrorResponses = errorResponsesIn(novuErrorContent, STANDARD);

/** Novu's `failIfExists` query: a 409 carrying the existing `what` instead of an update. */
export function failIfExistsQuery(what: string) {
  return z.object({
    failIfExists: z
      .enum(['true', 'false'])
      .optional()
      .openapi({ description: `A 409 instead of an update when the ${what} exists` }),
  });
}

/** Herald's `details` (`[{ field, message }]`) as Novu's `errors` record. */
function constraintsOf(details: unknown): Record<string, { messages: string[] }> {
  const errors: Record<string, { messages: string[] }> = {};
  if (!Array.isArray(details)) return errors;
  for (const detail of details as { field?: unknown; message?: unknown }[]) {
    const field = typeof detail.field === 'string' ? detail.field : '(body)';
    const entry = errors[field] ?? { messages: [] };
    entry.messages.push(typeof detail.message === 'string' ? detail.message : 'invalid');
    errors[field] = entry;
  }
  return errors;
}

/** Novu's body for an error Herald answered as `herald` (its envelope). */
export function novuErrorBody(c: Context, status: number, herald: ErrorBody['error']) {
  const base = {
    statusCode: status,
    timestamp: new Date().toISOString(),
    path: c.req.path,
    message: herald.message,
  };
  if (status === 422) return { ...base, errors: constraintsOf(herald.details), error: herald };
  if (status === 400) return { ...base, type: herald.code, errors: [], error: herald };
  return { ...base, error: herald };
}

/**
 * Mounted before the key check on the Novu-compatible paths: every error answered there (by the
 * key check, the body checks, the route or the one error handler) leaves in Novu's shape, unless
 * the caller authenticated with `Bearer`, the way Herald's own clients do, who get Herald's
 * envelope unchanged.
 */
export const novuErrors = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  const { status } = c.res;
  if (status < 400 || bearerToken(c.req.header('Authorization'))) return;
  if (!(c.res.headers.get('Content-Type') ?? '').startsWith('application/json')) return;
  const body = (await c.res
    .clone()
    .json()
    .catch(() => null)) as (Partial<ErrorBody> & { statusCode?: unknown }) | null;
  if (!body?.error || typeof body.error.code !== 'string' || body.statusCode !== undefined) return;
  c.res = new Response(JSON.stringify(novuErrorBody(c, status, body.error)), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
  c.res.headers.delete('Content-Length');
});

/** Novu's `idempotency-key` request header, as the OpenAPI document shows it. */
export const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .optional()
    .openapi({
      param: { name: 'idempotency-key', in: 'header' },
      description:
        'Novu’s idempotency key (1 to 255 characters): within 24 hours the same key and body get the same answer and send nothing twice; the same key with another body is a 422. Novu’s SDK sends one with every call.',
    }),
});

/** The request's idempotency key, if any; a 400 when Novu would refuse it. */
export function idempotencyKeyOf(c: Context<AppEnv>): string | undefined {
  const key = c.req.header('idempotency-key');
  checkIdempotencyKey(key);
  return key;
}

/** Novu's answer headers for an idempotent request: the key, and whether this is a replay. */
export function idempotencyHeaders(c: Context<AppEnv>, key: string | undefined, replayed: boolean): void {
  if (key === undefined) return;
  c.header('Idempotency-Key', key);
  if (replayed) c.header('Idempotency-Replay', 'true');
}

/**
 * Runs an upsert under the request's idempotency key, written down for this method, path and body
 * (services/novu/idempotency.ts): a reuse with another body is a 422 before `work` runs; a failure
 * forgets the key. `replayed` says the same key and body came before.
 */
export async function underIdempotencyKey<T>(
  c: Context<AppEnv>,
  body: unknown,
  work: (replayed: boolean) => Promise<T>,
): Promise<T> {
  const key = idempotencyKeyOf(c);
  const services = c.var.services;
  const replayed =
    key !== undefined && (await claimIdempotencyKey(services, key, `${c.req.method} ${c.req.path}`, body));
  try {
    const value = await work(replayed);
    idempotencyHeaders(c, key, replayed);
    return value;
  } catch (error) {
    await releaseIdempotencyKey(services);
    throw error;
  }
}

/** Novu's error fields for an answer a route builds itself (a 409 carrying what exists). */
export function novuConflict(c: Context<AppEnv>, code: string, message: string) {
  return {
    statusCode: 409,
    timestamp: new Date().toISOString(),
    path: c.req.path,
    message,
    error: { code, message },
  };
}
