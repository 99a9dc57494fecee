/**
 * Errors a use case raises for its caller's mistakes. The API's one error handler turns each
 * into the JSON envelope `{ error: { code, message, details? } }` with the status given here.
 */
export class AppError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what: string) => new AppError(404, 'not_found', `${what} not found`);

/** A field-level validation failure: `field` is the JSON path, e.g. `recipients[0].email`. */
export const invalidField = (field: string, message: string) =>
  new AppError(422, 'validation_error', `${field}: ${message}`, [{ field, message }]);
