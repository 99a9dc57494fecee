import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { AppError, BUCKET_MOVING_RETRY_SECONDS, bucketMoving } from '../../domain/errors';
import { log } from '../../lib/log';
import { isBucketLocked } from '../../storage/bucket-rows';

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
  details?: unknown,
) {
  const body: ErrorBody = { error: { code, message, ...(details === undefined ? {} : { details }) } };
  return c.json(body, status);
}

/** `recipients.0.email` → `recipients[0].email`, the way a JSON path is usually written. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(body)';
}

/** Turns a zod failure into the 422 envelope; the message names the first failing field. */
export function validationError(c: Context, error: ZodError, prefix?: string) {
  const details = flattenIssues(error.issues).map((issue) => {
    const field = fieldPath([...(prefix ? [prefix] : []), ...issue.path]);
    return { field, message: issue.message };
  });
  const first = details[0];
  return errorResponse(
    c,
    422,
    'validation_error',
    first ? `${first.field}: ${first.message}` : 'invalid request',
    details,
  );
}

type Issue = ZodError['issues'][number];

/**
 * A body that matches none of a union's shapes reports the shape it came closest to (fewest
 * issues), so a Herald notification without `type` names `type`, not the whole body.
 */
function flattenIssues(issues: readonly Issue[]): Issue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union' || !('errors' in issue) || issue.errors.length === 0) return [issue];
    const closest = [...issue.errors].sort((a, b) => a.length - b.length)[0] ?? [];
    return flattenIssues(
      closest.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }) as Issue),
    );
  });
}

const HTTP_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

/** The one error handler: every failure leaves as the same JSON envelope, and a 500 says nothing inside. */
export function onError(error: Error, c: Context) {
  // A write the database refused because its bucket is locked for a move: the same answer as one
  // refused before writing, whichever saw the move first.
  const known = isBucketLocked(error) ? bucketMoving() : error;
  if (known instanceof AppError) {
    if (known.code === 'bucket_moving') c.header('Retry-After', String(BUCKET_MOVING_RETRY_SECONDS));
    return errorResponse(c, known.status, known.code, known.message, known.details);
  }
  if (error instanceof HTTPException) {
    const status = error.status as ContentfulStatusCode;
    return errorResponse(c, status, HTTP_CODES[status] ?? 'http_error', error.message || 'request failed');
  }
  log('error', 'api.unhandled', {
    requestId: c.get('requestId' as never) as string | undefined,
    path: c.req.path,
    method: c.req.method,
    error: error.message,
  });
  return errorResponse(c, 500, 'internal_error', 'internal error');
}
