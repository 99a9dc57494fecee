import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { MAX_SUBSCRIBERS_PER_CALL } from '../../domain/topics';
import { releaseIdempotencyKey } from '../../services/novu/idempotency';
import { subscribeToNovuTopic, topicView, upsertNovuTopic } from '../../services/novu/topics';
import { validationError } from '../shared/errors';
import { IdSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';
import {
  NovuSubscriptionSchema,
  NovuTopicSchema,
  NovuTopicSubscriptionsSchema,
  NovuUpsertTopicSchema,
} from './novu-schemas';
import {
  failIfExistsQuery,
  IdempotencyHeaders,
  NOVU_AUTH,
  NOVU_TAG,
  NovuErrorSchema,
  novuConflict,
  novuErrorResponses,
  novuSecurity,
  underIdempotencyKey,
} from './novu-shared';

/*
 * Novu's topics: POST /v2/topics and POST /v2/topics/{topicKey}/subscriptions, on Herald's topics
 * (services/novu/topics.ts). Sending to a topic is a trigger with `to: { type: "Topic", topicKey }`.
 */

const bodyErrors = novuErrorResponses({
  400: true,
  401: true,
  403: true,
  413: true,
  415: true,
  422: 'Validation failed (`errors` names each field), or the idempotency-key was used with another body',
  429: true,
  503: true,
});

const upsertTopic = createRoute({
  method: 'post',
  path: '/v2/topics',
  operationId: 'upsertNovuTopic',
  tags: [NOVU_TAG],
  summary: 'Novu: create a topic, or rename it',
  description:
    'PUT /v1/topics/{key}: 201 when created, 200 when it existed (a `name` left out keeps its name). `data` is accepted and not stored. With `failIfExists=true` an existing topic is a 409 carrying it.' +
    NOVU_AUTH,
  security: novuSecurity,
  request: {
    headers: IdempotencyHeaders,
    query: failIfExistsQuery('topic'),
    body: jsonBody(NovuUpsertTopicSchema),
  },
  responses: {
    200: {
      description: 'The topic existed',
      content: { 'application/json': { schema: z.object({ data: NovuTopicSchema }) } },
    },
    201: {
      description: 'The topic was created',
      content: { 'application/json': { schema: z.object({ data: NovuTopicSchema }) } },
    },
    409: {
      description: '`failIfExists=true` and the topic exists: Novu’s error with the topic’s fields',
      content: { 'application/json': { schema: z.intersection(NovuErrorSchema, NovuTopicSchema) } },
    },
    ...bodyErrors,
  },
});

const subscribeTopic = createRoute({
  method: 'post',
  path: '/v2/topics/{topicKey}/subscriptions',
  operationId: 'createNovuTopicSubscriptions',
  tags: [NOVU_TAG],
  summary: 'Novu: subscribe subscribers to a topic (created when missing)',
  description:
    'POST /v1/topics/{key}/subscribers, creating the topic first when there is none, as Novu does. Every subscriber id is subscribed, with a contact or not; a repeat changes nothing. `meta.successful` counts them all; Herald reports no per-subscriber errors.' +
    NOVU_AUTH,
  security: novuSecurity,
  request: {
    headers: IdempotencyHeaders,
    params: z.object({
      topicKey: z
        .string()
        .min(1)
        .max(256)
        .openapi({ param: { name: 'topicKey', in: 'path' } }),
    }),
    body: jsonBody(NovuTopicSubscriptionsSchema),
  },
  responses: {
    201: {
      description: 'One subscription per subscriber',
      content: {
        'application/json': {
          schema: z.object({
            data: z.array(NovuSubscriptionSchema),
            meta: z.object({ totalCount: z.number(), successful: z.number(), failed: z.number() }),
          }),
        },
      },
    },
    ...bodyErrors,
  },
});

/** What Herald validates of the topic routes' input: keys and user ids are Herald ids. */
const TopicKeyBody = z.object({ key: IdSchema });
const SubscribersBody = z.object({
  topicKey: IdSchema,
  subscriberIds: z.array(IdSchema).min(1, 'name at least one subscriber').max(MAX_SUBSCRIBERS_PER_CALL),
});

type SubscriptionsBody = z.infer<typeof NovuTopicSubscriptionsSchema>;

const subscriberIdsOf = (body: SubscriptionsBody) => [
  ...(body.subscriberIds ?? []),
  ...(body.subscriptions ?? []).map((s) => (typeof s === 'string' ? s : s.subscriberId)),
];

/** Novu's topics API (scope contacts:write, as Herald's topic routes). */
export const novuTopicRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(upsertTopic, async (c) => {
    const body = c.req.valid('json');
    const parsed = TopicKeyBody.safeParse(body);
    if (!parsed.success) return validationError(c, parsed.error) as never; // novuErrors reshapes it
    const failIfExists = c.req.valid('query').failIfExists === 'true';
    const outcome = await underIdempotencyKey(c, body, () =>
      upsertNovuTopic(c.var.services, parsed.data.key, body.name, failIfExists),
    );
    if ('exists' in outcome) {
      await releaseIdempotencyKey(c.var.services); // nothing was written
      const conflict = novuConflict(c, 'topic_exists', `topic "${parsed.data.key}" already exists`);
      return c.json({ ...conflict, ...topicView(outcome.exists) }, 409);
    }
    return c.json({ data: topicView(outcome.topic) }, outcome.created ? 201 : 200);
  })
  .openapi(subscribeTopic, async (c) => {
    const body = c.req.valid('json');
    const { topicKey } = c.req.valid('param');
    const parsed = SubscribersBody.safeParse({ topicKey, subscriberIds: subscriberIdsOf(body) });
    if (!parsed.success) return validationError(c, parsed.error) as never; // novuErrors reshapes it
    const { subscriptions } = await underIdempotencyKey(c, body, () =>
      subscribeToNovuTopic(c.var.services, topicKey, parsed.data.subscriberIds, body.name),
    );
    const meta = { totalCount: subscriptions.length, successful: subscriptions.length, failed: 0 };
    return c.json({ data: subscriptions, meta }, 201);
  });
