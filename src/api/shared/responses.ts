import { ErrorSchema } from './schemas';

/** A response body in the one error envelope, as the OpenAPI document describes it. */
export const errorContent = { 'application/json': { schema: ErrorSchema } };

type ErrorStatus = 401 | 403 | 404 | 409 | 422;

const STANDARD: Record<ErrorStatus, string> = {
  401: 'Missing or invalid API key',
  403: 'This key lacks the scope',
  404: 'Not found',
  409: 'Conflict',
  422: 'Validation failed; names the field',
};

/**
 * A route's error responses: each status with its standard description (`true`) or the route's
 * own words, always the same envelope.
 */
export function errorResponses<S extends ErrorStatus>(
  statuses: Record<S, string | true>,
): Record<S, { description: string; content: typeof errorContent }> {
  return Object.fromEntries(
    (Object.entries(statuses) as [string, string | true][]).map(([status, description]) => [
      status,
      {
        description: description === true ? STANDARD[Number(status) as ErrorStatus] : description,
        content: errorContent,
      },
    ]),
  ) as Record<S, { description: string; content: typeof errorContent }>;
}
