import type { Hook } from '@hono/zod-openapi';
import type { ZodType } from 'zod';
import { validationError } from './errors';
import type { AppEnv } from './types';

/** A required JSON request body for a route definition. */
export function jsonBody<T extends ZodType>(schema: T) {
  return { required: true, content: { 'application/json': { schema } } } as const;
}

/** Every zod failure in a route becomes the 422 envelope naming the field. */
// biome-ignore lint/suspicious/noExplicitAny: Hono's hook type is generic over every route.
export const validationHook: Hook<any, AppEnv, any, any> = (result, c) => {
  if (!result.success) {
    const target = (result as { target?: string }).target;
    return validationError(
      c,
      result.error,
      target === 'query' ? 'query' : target === 'param' ? 'path' : undefined,
    );
  }
};
