import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { MAX_SUBSCRIBERS_PER_CALL } from '../../domain/topics';
import {
  deleteTopic,
  describeTopic,
  listSubscribers,
  listTopics,
  putTopic,
  subscribe,
  unsubscribe,
} from '../../services/topics/topics';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import { IdSchema, TopicKeySchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];
const tags = ['topics'];
const KeyParam = z.object({ key: TopicKeySchema.openapi({ param: { name: 'key', in: 'path' } }) });

const TopicSchema = z
  .object({ key: z.string(), name: z.string().nullable(), createdAt: z.string(), updatedAt: z.string() })
  .openapi('Topic');

const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: IdSchema.optional().openapi({ description: 'The `nextCursor` of the previous page' }),
});

const UserIdsSchema = z
  .object({ userIds: z.array(IdSchema).min(1).max(MAX_SUBSCRIBERS_PER_CALL) })
  .strict()
  .openapi('TopicSubscribers', { example: { userIds: ['user_1', 'user_2'] } });

const put = createRoute({
  method: 'put',
  path: '/v1/topics/{key}',
  operationId: 'putTopic',
  tags,
  summary: 'Create a topic, or rename it',
  description: 'Idempotent: 201 when created, 200 when it existed (a `name` left out keeps its name).',
  security,
  request: {
    params: KeyParam,
    body: {
      ...jsonBody(z.object({ name: z.string().min(1).max(256).nullable().optional() }).strict()),
      required: false,
    },
  },
  responses: {
    200: { description: 'The topic existed', content: { 'application/json': { schema: TopicSchema } } },
    201: { description: 'The topic was created', content: { 'application/json': { schema: TopicSchema } } },
    ...errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS }),
  },
});

const list = createRoute({
  method: 'get',
  path: '/v1/topics',
  operationId: 'listTopics',
  tags,
  summary: 'List topics in key order',
  security,
  request: { query: PageQuery },
  responses: {
    200: {
      description: 'A page of topics; pass `nextCursor` as `cursor` for the next one',
      content: {
        'application/json': {
          schema: z.object({ data: z.array(TopicSchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...errorResponses({ ...KEY_ERRORS, 422: true }),
  },
});

const getOne = createRoute({
  method: 'get',
  path: '/v1/topics/{key}',
  operationId: 'getTopic',
  tags,
  summary: 'A topic and how many users follow it',
  security,
  request: { params: KeyParam },
  responses: {
    200: {
      description: 'The topic',
      content: { 'application/json': { schema: TopicSchema.extend({ subscribers: z.number() }) } },
    },
    ...errorResponses({ ...KEY_ERRORS, 404: true, 422: true }),
  },
});

const remove = createRoute({
  method: 'delete',
  path: '/v1/topics/{key}',
  operationId: 'deleteTopic',
  tags,
  summary: 'Delete a topic and its subscriptions',
  security,
  request: { params: KeyParam },
  responses: {
    204: { description: 'Deleted' },
    ...errorResponses({ ...KEY_ERRORS, 404: true, 422: true }),
  },
});

const addSubscribers = createRoute({
  method: 'post',
  path: '/v1/topics/{key}/subscribers',
  operationId: 'addTopicSubscribers',
  tags,
  summary: `Subscribe users to a topic (up to ${MAX_SUBSCRIBERS_PER_CALL} per call)`,
  description: 'Idempotent: a user already subscribed stays subscribed once. The users need no contact yet.',
  security,
  request: { params: KeyParam, body: jsonBody(UserIdsSchema) },
  responses: {
    200: {
      description: 'How many were not subscribed before',
      content: { 'application/json': { schema: z.object({ key: z.string(), added: z.number() }) } },
    },
    ...errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS, 404: true }),
  },
});

const removeSubscribers = createRoute({
  method: 'delete',
  path: '/v1/topics/{key}/subscribers',
  operationId: 'removeTopicSubscribers',
  tags,
  summary: `Unsubscribe users from a topic (up to ${MAX_SUBSCRIBERS_PER_CALL} per call)`,
  security,
  request: { params: KeyParam, body: jsonBody(UserIdsSchema) },
  responses: {
    200: {
      description: 'How many were subscribed',
      content: { 'application/json': { schema: z.object({ key: z.string(), removed: z.number() }) } },
    },
    ...errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS, 404: true }),
  },
});

const listSubscribersRoute = createRoute({
  method: 'get',
  path: '/v1/topics/{key}/subscribers',
  operationId: 'listTopicSubscribers',
  tags,
  summary: "A page of a topic's subscribers in user-id order",
  security,
  request: { params: KeyParam, query: PageQuery },
  responses: {
    200: {
      description: 'A page of subscribers; pass `nextCursor` as `cursor` for the next one',
      content: {
        'application/json': {
          schema: z.object({
            data: z.array(z.object({ userId: z.string(), subscribedAt: z.string() })),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    ...errorResponses({ ...KEY_ERRORS, 404: true, 422: true }),
  },
});

/** Topics and their subscribers; a notification reaches them with `{ "topic": key }` recipients. */
export const topicRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(put, async (c) => {
    const body = c.req.valid('json') as { name?: string | null } | undefined;
    const { topic, created } = await putTopic(c.var.services, c.req.valid('param').key, body ?? {});
    return created ? c.json(topic, 201) : c.json(topic, 200);
  })
  .openapi(list, async (c) => {
    const { limit, cursor } = c.req.valid('query');
    const { topics, next } = await listTopics(c.var.services, cursor, limit);
    return c.json({ data: topics, nextCursor: next }, 200);
  })
  .openapi(getOne, async (c) => c.json(await describeTopic(c.var.services, c.req.valid('param').key), 200))
  .openapi(remove, async (c) => {
    await deleteTopic(c.var.services, c.req.valid('param').key);
    return c.body(null, 204);
  })
  .openapi(addSubscribers, async (c) => {
    const { key } = c.req.valid('param');
    const { added } = await subscribe(c.var.services, key, c.req.valid('json').userIds);
    return c.json({ key, added }, 200);
  })
  .openapi(removeSubscribers, async (c) => {
    const { key } = c.req.valid('param');
    const { removed } = await unsubscribe(c.var.services, key, c.req.valid('json').userIds);
    return c.json({ key, removed }, 200);
  })
  .openapi(listSubscribersRoute, async (c) => {
    const { key } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const { subscribers, next } = await listSubscribers(c.var.services, key, cursor, limit);
    const data = subscribers.map((s) => ({
      userId: s.userId,
      subscribedAt: new Date(s.createdAtMs).toISOString(),
    }));
    return c.json({ data, nextCursor: next }, 200);
  });
