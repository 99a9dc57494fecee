import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { notFound } from '../../domain/errors';
import { inboxOf } from '../../services/inbox/inbox';
import {
  DEFAULT_TOKEN_TTL_SECONDS,
  MAX_TOKEN_TTL_SECONDS,
  mintInboxToken,
} from '../../services/inbox/tokens';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import { IdSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';
import { FeedPageSchema, feedBody, ItemIdSchema } from './inbox';

const security = [{ bearerAuth: [] }];
const errors = errorResponses({ ...KEY_ERRORS, 422: true });

const mintToken = createRoute({
  method: 'post',
  path: '/v1/inbox/tokens',
  operationId: 'createInboxToken',
  tags: ['inbox'],
  summary: "A token for one end user's inbox, for your app to hand to their browser (scope inbox:token)",
  security,
  request: {
    body: jsonBody(
      z
        .object({
          userId: IdSchema,
          ttlSeconds: z
            .number()
            .int()
            .min(60)
            .max(MAX_TOKEN_TTL_SECONDS)
            .default(DEFAULT_TOKEN_TTL_SECONDS)
            .openapi({ description: 'Lifetime, 60 s to 24 h (default 1 h)' }),
        })
        .strict(),
    ),
  },
  responses: {
    201: {
      description: 'The token and when it expires',
      content: { 'application/json': { schema: z.object({ token: z.string(), expiresAt: z.string() }) } },
    },
    ...errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS }),
  },
});

const UserParam = z.object({ userId: IdSchema.openapi({ param: { name: 'userId', in: 'path' } }) });

const listInbox = createRoute({
  method: 'get',
  path: '/v1/contacts/{userId}/inbox',
  operationId: 'listContactInbox',
  tags: ['inbox'],
  summary: "A user's inbox as an operator sees it: every item, archived ones included, newest first",
  security,
  request: {
    params: UserParam,
    query: z.object({
      limit: z.coerce.number().int().min(1).max(100).default(50),
      cursor: ItemIdSchema.optional(),
    }),
  },
  responses: {
    200: {
      description: 'A page of items and the counts',
      content: {
        'application/json': {
          schema: FeedPageSchema,
        },
      },
    },
    ...errors,
  },
});

const deleteItem = createRoute({
  method: 'delete',
  path: '/v1/contacts/{userId}/inbox/{id}',
  operationId: 'deleteContactInboxItem',
  tags: ['inbox'],
  summary: "Remove one item from a user's inbox (their open sockets hear item.deleted)",
  security,
  request: {
    params: UserParam.extend({
      id: z
        .string()
        .regex(/^inb_[0-9a-z]{1,60}$/)
        .openapi({ param: { name: 'id', in: 'path' } }),
    }),
  },
  responses: { 204: { description: 'Removed' }, ...errors, ...errorResponses({ 404: 'No such item' }) },
});

/** Inbox routes that take an API key: minting end-user tokens, an operator's view of an inbox. */
export const inboxAdminRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(mintToken, async (c) => {
    const { userId, ttlSeconds } = c.req.valid('json');
    c.header('Cache-Control', 'no-store');
    return c.json(await mintInboxToken(c.var.services, userId, ttlSeconds), 201);
  })
  .openapi(listInbox, async (c) => {
    const { userId } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const page = await inboxOf(c.var.services, userId).feed({
      status: 'all',
      archived: 'include',
      limit,
      ...(cursor !== undefined ? { before: cursor } : {}),
    });
    return c.json(feedBody(page), 200);
  })
  .openapi(deleteItem, async (c) => {
    const { userId, id } = c.req.valid('param');
    if (!(await inboxOf(c.var.services, userId).remove(id))) throw notFound(`inbox item ${id}`);
    return c.body(null, 204);
  });
