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

/** Seconds a writer refused by a moving bucket is asked to wait (a move's lock lasts seconds). */
export const BUCKET_MOVING_RETRY_SECONDS = 10;

/** A write to a user whose data is moving to another database (see `shards:move`). */
export const bucketMoving = () =>
  new AppError(
    503,
    'bucket_moving',
    "this recipient's data is moving to another database; try again in a few seconds",
  );
