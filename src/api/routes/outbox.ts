import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { CHANNELS } from '../../domain/channels';
import { AppError } from '../../domain/errors';
import { viewAddress } from '../../domain/masking';
import { sandboxOn } from '../../services/operations/provider-status';
import { errorResponses, KEY_ERRORS } from '../shared/responses';
import { AddressViewSchema, IdSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { validationHook } from '../shared/validation';
import { addressVisibility } from '../shared/views';

const OutboxEntrySchema = z
  .object({
    id: z.number(),
    deliveryId: z.string(),
    notificationId: z.string(),
    userId: z.string().nullable(),
    channel: z.enum(CHANNELS),
    address: AddressViewSchema,
    message: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    idempotentRepeat: z.boolean().openapi({
      description:
        'A repeat of a delivery already captured, carrying the same idempotency key (the delivery id) on a channel whose real providers take one: a real provider would have dropped it',
    }),
  })
  .openapi('OutboxEntry');

const listOutbox = createRoute({
  method: 'get',
  path: '/v1/outbox',
  operationId: 'listOutbox',
  tags: ['sandbox'],
  summary: 'Messages the sandbox provider captured instead of sending (only while sandbox is on)',
  security: [{ bearerAuth: [] }],
  request: {
    query: z.object({
      userId: IdSchema.optional(),
      channel: z.enum(CHANNELS).optional(),
      notificationId: IdSchema.optional(),
      limit: z.coerce.number().int().min(1).max(500).default(50),
    }),
  },
  responses: {
    200: {
      description: 'Newest first',
      content: { 'application/json': { schema: z.object({ data: z.array(OutboxEntrySchema) }) } },
    },
    ...errorResponses({ ...KEY_ERRORS, 404: 'No channel uses the sandbox provider', 422: true }),
  },
});

/**
 * The sandbox outbox, readable only while some channel is served by the sandbox provider. Its
 * addresses follow the caller's view like a delivery's (masked without `contacts:read`).
 */
export const outboxRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(
  listOutbox,
  async (c) => {
    if (!sandboxOn(c.env))
      throw new AppError(404, 'not_found', 'the outbox exists only while the sandbox provider is configured');
    const visibility = addressVisibility(c);
    const entries = (await c.var.services.outbox.list(c.req.valid('query'))).map((entry) => ({
      ...entry,
      address: viewAddress(entry.address, visibility),
    }));
    return c.json({ data: entries as unknown as z.infer<typeof OutboxEntrySchema>[] }, 200);
  },
);
