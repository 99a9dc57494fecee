import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { flushDigests, openDigestsOf } from '../../services/operations/digest-admin';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import { IdSchema, TypeSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];
const errors = errorResponses({ ...KEY_ERRORS, 422: true });
const UserParam = z.object({ userId: IdSchema.openapi({ param: { name: 'userId', in: 'path' } }) });

const listDigests = createRoute({
  method: 'get',
  path: '/v1/contacts/{userId}/digests',
  operationId: 'listContactDigests',
  tags: ['digests'],
  summary: "A user's open digests: what each holds and when its window closes",
  security,
  request: { params: UserParam },
  responses: {
    200: {
      description: 'The open digests',
      content: {
        'application/json': {
          schema: z.object({
            data: z.array(
              z.object({
                type: z.string(),
                channel: z.string(),
                key: z.string(),
                count: z.number(),
                deliveryIds: z.array(z.string()),
                firstAt: z.string().nullable(),
                closesAt: z.string(),
              }),
            ),
          }),
        },
      },
    },
    ...errors,
  },
});

const flush = createRoute({
  method: 'post',
  path: '/v1/contacts/{userId}/digests/{type}/flush',
  operationId: 'flushContactDigests',
  tags: ['digests'],
  summary: "Send a user's open digests of a type now (only the one with `key` when given)",
  security,
  request: {
    params: UserParam.extend({ type: TypeSchema.openapi({ param: { name: 'type', in: 'path' } }) }),
    body: { ...jsonBody(z.object({ key: z.string().max(256).optional() }).strict()), required: false },
  },
  responses: {
    200: {
      description: 'How many digests were sent',
      content: { 'application/json': { schema: z.object({ flushed: z.number() }) } },
    },
    ...errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS }),
  },
});

/** Digests: what a user's recipient object holds open, and sending it now. */
export const digestRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(listDigests, async (c) =>
    c.json({ data: await openDigestsOf(c.var.services, c.req.valid('param').userId) }, 200),
  )
  .openapi(flush, async (c) => {
    const { userId, type } = c.req.valid('param');
    const body = c.req.valid('json') as { key?: string } | undefined;
    return c.json({ flushed: await flushDigests(c.var.services, userId, type, body?.key) }, 200);
  });
