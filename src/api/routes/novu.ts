import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../shared/types';
import { validationHook } from '../shared/validation';
import { novuEventRoutes } from './novu-events';
import { novuSubscriberRoutes } from './novu-subscribers';
import { novuTopicRoutes } from './novu-topics';

/*
 * The Novu-compatible API: the routes an application using Novu's SDK (@novu/api) calls, so it can
 * point `serverURL` at Herald and keep its code. Events (novu-events.ts), subscribers
 * (novu-subscribers.ts), topics (novu-topics.ts); what they share, Novu's error shape and idempotency header, in
 * novu-shared.ts. app.ts mounts `novuErrors` and the key check before these on NOVU_PATHS.
 */

export { novuErrors } from './novu-shared';

/** Where the Novu-compatible routes live, for app.ts's middleware. */
export const NOVU_PATHS = [
  '/v1/events/*',
  '/v2/subscribers',
  '/v2/subscribers/*',
  '/v2/topics',
  '/v2/topics/*',
];

export const novuRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .route('/', novuEventRoutes)
  .route('/', novuSubscriberRoutes)
  .route('/', novuTopicRoutes);
