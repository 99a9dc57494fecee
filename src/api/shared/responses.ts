import { ErrorSchema } from './schemas';

/*
 * The contract every route in GET /openapi.json keeps (test/node/openapi-contract.test.ts lints
 * the document with Redocly's `recommended` rules and fails on any problem; test/api/openapi.test.ts
 * checks the served document). Generated clients (clients/js) turn each operation into a method,
 * so these are API, not decoration:
 *
 * - `operationId`: camelCase, unique, verb first and naming the resource (`sendNotification`,
 *   `listTemplateVersions`, `upsertContact`). Never rename one: it is a method name in clients.
 * - `tags`: at least one, each declared with a description in `OPENAPI_TAGS` (src/api/openapi.ts).
 * - `security`: `[{ bearerAuth: [] }]` for an API-key route, `[{ inboxToken: [] }]` for the
 *   inbox's client routes, and `[]` written out for a public route (a signature or a signed token
 *   in the URL is its authority).
 * - `summary`, a 2xx response, and every 4xx it can answer from `errorResponses` below: an API-key
 *   route spreads `KEY_ERRORS`, one that takes a JSON body (POST, PUT, PATCH under /v1) also
 *   `BODY_ERRORS`; then its own (404, 409, …), in the one error envelope.
 * - Then `npm run client:generate`: the typed client's types are committed, and a test fails while
 *   they are stale.
 */

/** A response body in the one error envelope, as the OpenAPI document describes it. */
export const errorContent = { 'application/json': { schema: ErrorSchema } };

type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503;

const STANDARD: Record<ErrorStatus, string> = {
  400: 'Malformed JSON body',
  401: 'Missing or invalid API key',
  403: 'This key lacks the scope',
  404: 'Not found',
  409: 'Conflict',
  413: 'Body over 100 KB',
  415: 'Body not sent as Content-Type: application/json',
  422: 'Validation failed; names the field',
  429: 'Over this key’s rate limit; Retry-After says when to try again',
  503: 'Temporarily unavailable; retry',
};

/** What the `/v1` middleware answers before any route runs: the key (401), its rate limit (429), its scope (403). */
export const KEY_ERRORS = { 401: true, 403: true, 429: true } as const;

/**
 * What a POST, PUT or PATCH under `/v1` may also answer: not JSON (415, even without a body),
 * too large (413), malformed (400), invalid (422).
 */
export const BODY_ERRORS = { 400: true, 413: true, 415: true, 422: true } as const;

/**
 * A builder of error responses in one body shape: each status with its standard description
 * (`true`) or the route's own words. Herald's routes use {@link errorResponses}; the
 * Novu-compatible routes build theirs in Novu's shape.
 */
export function errorResponsesIn<C, K extends number>(content: C, standard: Record<K, string>) {
  return <T extends Partial<Record<K, string | true>>>(
    statuses: T,
  ): { [S in keyof T]: { description: string; content: C } } =>
    Object.fromEntries(
      (Object.entries(statuses) as [string, string | true][]).map(([status, description]) => [
        status,
        { description: description === true ? standard[Number(status) as K] : description, content },
      ]),
    ) as { [S in keyof T]: { description: string; content: C } };
}

/** A route's error responses, always in the one envelope. */
export const errorResponses = errorResponsesIn(errorContent, STANDARD);
