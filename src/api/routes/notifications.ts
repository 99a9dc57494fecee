import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { CHANNELS } from '../../domain/channels';
import { MAX_DELIVERIES_LISTED, type Notification } from '../../domain/delivery';
import { AppError } from '../../domain/errors';
import type { AddressVisibility } from '../../domain/masking';
import { STATUSES } from '../../domain/status';
import { isTopicRecipient } from '../../domain/topics';
import { groupBy } from '../../lib/collections';
import { type Cursor, decodeCursor, encodeCursor } from '../../lib/cursor';
import type { Services } from '../../services/container';
import { type Accepted, acceptNotifications, type NotificationInput } from '../../services/ingest/accept';
import { type EventBridgeEvent, fromEventBridge } from '../../services/ingest/eventbridge';
import { requireNotification } from '../../services/ingest/notification-lookup';
import { checkChannelUrls, checkSubscriptionUrls } from '../../services/recipients/contacts';
import { assertSendAllowed } from '../shared/auth';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import {
  AcceptedSchema,
  DeliverySchema,
  EventBridgeEventSchema,
  IdSchema,
  NotificationInputSchema,
  NotificationSchema,
  TypeSchema,
} from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';
import { addressVisibility, viewDelivery } from '../shared/views';

const security = [{ bearerAuth: [] }];
const sendErrors = errorResponses({
  ...KEY_ERRORS,
  ...BODY_ERRORS,
  409: 'The id was used before with a different body',
  503: "A recipient's bucket is moving between databases: nothing was written; retry after Retry-After",
});

const SendBodySchema = z.union([NotificationInputSchema, EventBridgeEventSchema]);

const send = createRoute({
  method: 'post',
  path: '/v1/notifications',
  operationId: 'sendNotification',
  tags: ['notifications'],
  summary: 'Send one notification (or the seed EventBridge-style event)',
  description:
    'Answers 202 once the rows are written and the deliveries enqueued. Sending the same `id` again returns the same notification (current statuses) with `Idempotent-Replayed: true` and enqueues nothing; the same `id` with a different body is a 409.',
  security,
  request: { body: jsonBody(SendBodySchema) },
  responses: {
    202: { description: 'Accepted', content: { 'application/json': { schema: AcceptedSchema } } },
    ...sendErrors,
  },
});

const BatchBodySchema = z
  .object({ notifications: z.array(NotificationInputSchema).min(1).max(100) })
  .strict();

const sendBatch = createRoute({
  method: 'post',
  path: '/v1/notifications/batch',
  operationId: 'sendNotificationBatch',
  tags: ['notifications'],
  summary: 'Send up to 100 notifications in one request',
  security,
  request: { body: jsonBody(BatchBodySchema) },
  responses: {
    202: {
      description: 'Accepted, in request order',
      content: { 'application/json': { schema: z.object({ results: z.array(AcceptedSchema) }) } },
    },
    ...sendErrors,
  },
});

const getOne = createRoute({
  method: 'get',
  path: '/v1/notifications/{id}',
  operationId: 'getNotification',
  tags: ['notifications'],
  summary: 'A notification with its deliveries and their status history',
  security,
  request: { params: z.object({ id: IdSchema.openapi({ param: { name: 'id', in: 'path' } }) }) },
  responses: {
    200: { description: 'The notification', content: { 'application/json': { schema: NotificationSchema } } },
    ...errorResponses({ ...KEY_ERRORS, 404: 'No such notification (or `expired`: archived)', 422: true }),
  },
});

const listDeliveries = createRoute({
  method: 'get',
  path: '/v1/notifications/{id}/deliveries',
  operationId: 'listNotificationDeliveries',
  tags: ['notifications'],
  summary: "A page of a notification's deliveries, in id order",
  description:
    'For a notification with more deliveries than `GET /v1/notifications/{id}` lists (`deliveriesTruncated`: a send to a large topic). Pass `nextCursor` as `cursor` for the next page.',
  security,
  request: {
    params: z.object({ id: IdSchema.openapi({ param: { name: 'id', in: 'path' } }) }),
    query: z.object({
      limit: z.coerce.number().int().min(1).max(MAX_DELIVERIES_LISTED).default(100),
      cursor: IdSchema.optional().openapi({ description: 'The `nextCursor` of the previous page' }),
    }),
  },
  responses: {
    200: {
      description: 'A page of deliveries',
      content: {
        'application/json': {
          schema: z.object({ data: z.array(DeliverySchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...errorResponses({ ...KEY_ERRORS, 404: 'No such notification (or `expired`: archived)', 422: true }),
  },
});

const ListQuerySchema = z.object({
  userId: IdSchema.optional(),
  type: TypeSchema.optional(),
  status: z.enum(STATUSES).optional(),
  channel: z.enum(CHANNELS).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});

const list = createRoute({
  method: 'get',
  path: '/v1/notifications',
  operationId: 'listNotifications',
  tags: ['notifications'],
  summary: 'List notifications, newest first',
  security,
  request: { query: ListQuerySchema },
  responses: {
    200: {
      description: 'A page of notifications; pass `nextCursor` as `cursor` for the next one',
      content: {
        'application/json': {
          schema: z.object({ data: z.array(NotificationSchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...errorResponses({ ...KEY_ERRORS, 422: true }),
  },
});

function toAcceptedBody(accepted: Accepted) {
  return {
    id: accepted.id,
    ...(accepted.topics ? { topics: accepted.topics } : {}),
    deliveries: accepted.deliveries,
  };
}

/** Validates what only the env can decide (loopback URLs in development) on inline recipients. */
function checkInlineRecipients(services: Services, input: NotificationInput, prefix: string): void {
  input.recipients.forEach((recipient, index) => {
    if (typeof recipient !== 'string' && !isTopicRecipient(recipient)) {
      checkChannelUrls(
        services,
        recipient.externalChannels,
        `${prefix}recipients[${index}].externalChannels`,
      );
      checkSubscriptionUrls(
        services,
        recipient.deviceTokens,
        (i) => `${prefix}recipients[${index}].deviceTokens[${i}].deviceToken`,
      );
    }
  });
}

/** Normalises the single-send body: a Herald notification, or an EventBridge event turned into some. */
function toInputs(body: z.infer<typeof SendBodySchema>): NotificationInput[] {
  if (!('detail-type' in body)) return [body as NotificationInput];
  const inputs = fromEventBridge(body as EventBridgeEvent);
  for (const input of inputs) {
    const parsed = NotificationInputSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = `detail.${issue?.path.join('.') ?? ''}`;
      throw new AppError(422, 'validation_error', `${field}: ${issue?.message ?? 'invalid'}`, [
        { field, message: issue?.message },
      ]);
    }
  }
  return inputs;
}

/**
 * Notifications with their deliveries, each address through the caller's view (masked unless the
 * key may read contacts; never a webhook secret).
 */
export async function withDeliveries(
  services: Services,
  notifications: Notification[],
  visibility: AddressVisibility,
) {
  const deliveries = (
    await services.deliveries.getDeliveries(notifications.flatMap((n) => n.deliveryIds))
  ).map((d) => viewDelivery(d, visibility));
  const byNotification = groupBy(deliveries, (d) => d.notificationId);
  return notifications.map(({ requestHash: _hash, deliveryIds: _ids, dedupeKey: _key, ...n }) => ({
    ...n,
    deliveries: byNotification.get(n.id) ?? [],
  }));
}

/** Reads a listing cursor; one this API did not write is a 422 naming the field. */
function readCursor(text: string): Cursor {
  const cursor = decodeCursor(text);
  if (cursor) return cursor;
  throw new AppError(422, 'validation_error', 'query.cursor: not a cursor this API returned', [
    { field: 'query.cursor', message: 'invalid cursor' },
  ]);
}

/** Ingest and status. */
export const notificationRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(send, async (c) => {
    const inputs = toInputs(c.req.valid('json'));
    assertSendAllowed(c, inputs);
    for (const input of inputs) checkInlineRecipients(c.var.services, input, '');
    const results = await acceptNotifications(c.var.services, inputs);
    if (results.every((r) => r.replayed)) c.header('Idempotent-Replayed', 'true');
    const first = results[0];
    if (!first) throw new Error('no notification accepted');
    if (results.length === 1) return c.json(toAcceptedBody(first), 202);
    // Several types in one event: the event id answers for all of them.
    return c.json({ id: first.id, deliveries: results.flatMap((r) => r.deliveries) }, 202);
  })
  .openapi(sendBatch, async (c) => {
    const { notifications } = c.req.valid('json');
    assertSendAllowed(c, notifications, 'notifications');
    for (const [index, input] of notifications.entries()) {
      checkInlineRecipients(c.var.services, input, `notifications[${index}].`);
    }
    const results = await acceptNotifications(c.var.services, notifications);
    return c.json({ results: results.map(toAcceptedBody) }, 202);
  })
  .openapi(getOne, async (c) => {
    const { id } = c.req.valid('param');
    const services = c.var.services;
    const notification = await requireNotification(services, id);
    const [body] = await withDeliveries(c.var.services, [notification], addressVisibility(c));
    return c.json(body as z.infer<typeof NotificationSchema>, 200);
  })
  .openapi(listDeliveries, async (c) => {
    const { id } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const services = c.var.services;
    const ids = await services.deliveries.deliveryIdsAfter(id, cursor ?? null, limit + 1);
    if (ids === null || (ids.length === 0 && !cursor)) await requireNotification(services, id);
    const shown = (ids ?? []).slice(0, limit);
    const visibility = addressVisibility(c);
    const data = (await services.deliveries.getDeliveries(shown)).map((d) => viewDelivery(d, visibility));
    const nextCursor = (ids ?? []).length > limit ? (shown.at(-1) ?? null) : null;
    return c.json({ data: data as z.infer<typeof DeliverySchema>[], nextCursor }, 200);
  })
  .openapi(list, async (c) => {
    const query = c.req.valid('query');
    const page = await c.var.services.deliveries.list({
      ...query,
      limit: query.limit + 1,
      cursor: query.cursor ? readCursor(query.cursor) : undefined,
    });
    const more = page.length > query.limit;
    const shown = page.slice(0, query.limit);
    const last = shown.at(-1);
    return c.json(
      {
        data: (await withDeliveries(c.var.services, shown, addressVisibility(c))) as z.infer<
          typeof NotificationSchema
        >[],
        nextCursor:
          more && last ? encodeCursor({ createdAt: Date.parse(last.createdAt), id: last.id }) : null,
      },
      200,
    );
  });
