import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { STATUSES } from '../../domain/status';
import { cancelByKey, cancelNotification } from '../../services/ingest/cancel';
import { errorResponses, KEY_ERRORS } from '../shared/responses';
import { IdSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];
const errors = errorResponses({
  ...KEY_ERRORS,
  404: 'No such notification (or `expired`: archived)',
  422: true,
});

const CancellationSchema = z
  .object({
    id: z.string(),
    canceled: z.array(z.string()).openapi({ description: 'Delivery ids called off' }),
    alreadyGone: z
      .array(z.object({ id: z.string(), status: z.enum(STATUSES) }))
      .openapi({ description: 'Deliveries already handed to a provider (or ended), with their status' }),
  })
  .openapi('Cancellation');

const cancelOne = createRoute({
  method: 'delete',
  path: '/v1/notifications/{id}',
  operationId: 'cancelNotification',
  tags: ['notifications'],
  summary: 'Cancel every delivery of a notification not yet handed to a provider',
  security,
  request: { params: z.object({ id: IdSchema.openapi({ param: { name: 'id', in: 'path' } }) }) },
  responses: {
    200: {
      description: 'What was canceled, and what had already gone',
      content: { 'application/json': { schema: CancellationSchema } },
    },
    ...errors,
  },
});

const cancelMany = createRoute({
  method: 'delete',
  path: '/v1/notifications',
  operationId: 'cancelNotificationsByKey',
  tags: ['notifications'],
  summary: 'Cancel the notifications sharing a cancelKey (up to 100 a call; `more` says call again)',
  security,
  request: { query: z.object({ cancelKey: z.string().min(1).max(256) }) },
  responses: {
    200: {
      description: 'Each notification found and what was canceled of it',
      content: {
        'application/json': {
          schema: z.object({
            cancelKey: z.string(),
            notifications: z.array(CancellationSchema),
            more: z.boolean(),
          }),
        },
      },
    },
    ...errors,
  },
});

/** Cancellation: a producer calls off what has not gone yet (scope `notifications:write`). */
export const cancellationRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(cancelOne, async (c) =>
    c.json(await cancelNotification(c.var.services, c.req.valid('param').id), 200),
  )
  .openapi(cancelMany, async (c) =>
    c.json(await cancelByKey(c.var.services, c.req.valid('query').cancelKey), 200),
  );
