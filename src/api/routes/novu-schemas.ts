import { z } from '@hono/zod-openapi';
import { IdSchema } from '../shared/schemas';

/*
 * Novu's request and answer bodies as @novu/api 3.19 sends and validates them. The request schemas
 * are lenient the way Novu is (fields Herald does not use are accepted, and unknown ones dropped);
 * what Herald does use is validated again by Herald's own schemas once mapped
 * (services/novu/mapping.ts), so a 422 says exactly what Herald would.
 */

const nullableText = (max: number) => z.string().max(max).nullable().optional();

const ignored = (what: string) => ({ description: `Accepted and ignored: ${what}` });

export const NovuChannelSchema = z.object({
  providerId: z.string().min(1).max(64).openapi({
    description:
      'Used: `fcm` and `apns` (`credentials.deviceTokens`), `slack`, `discord` and `msteams` (`credentials.webhookUrl`). Any other provider is ignored.',
  }),
  integrationIdentifier: z
    .string()
    .max(256)
    .optional()
    .openapi(ignored('Herald picks providers per channel')),
  credentials: z.object({
    webhookUrl: z.string().max(2048).optional(),
    deviceTokens: z.array(z.string().max(4096)).max(50).optional(),
  }),
});

export const NovuSubscriberSchema = z
  .object({
    subscriberId: IdSchema.openapi({ description: 'The Herald user id' }),
    email: nullableText(254),
    phone: nullableText(32).openapi({ description: 'E.164, as Herald requires' }),
    locale: nullableText(35).openapi({ description: 'BCP 47 (`en_US` is read as `en-US`)' }),
    timezone: nullableText(64).openapi({ description: 'An IANA time zone' }),
    firstName: nullableText(256).openapi(ignored('a Herald contact holds no names')),
    lastName: nullableText(256).openapi(ignored('a Herald contact holds no names')),
    avatar: nullableText(2048).openapi(ignored('a Herald contact holds no avatar')),
    data: z
      .record(z.string(), z.unknown())
      .nullable()
      .optional()
      .openapi(ignored('a Herald contact holds no custom data')),
    channels: z.array(NovuChannelSchema).max(20).optional(),
  })
  .openapi('NovuSubscriberPayload');

export const NovuTopicRecipientSchema = z
  .object({
    type: z.literal('Topic'),
    topicKey: IdSchema.openapi({ description: 'A Herald topic key' }),
    exclude: z.array(IdSchema).max(1000).optional().openapi({ description: 'Subscribers left out' }),
  })
  .openapi('NovuTopicPayload');

const NovuRecipientSchema = z.union([
  NovuTopicRecipientSchema,
  NovuSubscriberSchema,
  z.string().min(1).max(256),
]);

export const NovuTriggerSchema = z
  .object({
    name: z.string().min(1).max(256).openapi({
      description: 'The workflow: Herald’s notification type (`workflowId` in the SDK)',
      example: 'payment_reminder',
    }),
    to: z.union([NovuRecipientSchema, z.array(NovuRecipientSchema).min(1).max(100)]).openapi({
      description: 'A subscriber id, a subscriber, a topic, or a list of up to 100 of these',
    }),
    payload: z.record(z.string(), z.unknown()).optional().openapi({ description: 'The template data' }),
    transactionId: z.string().min(1).max(256).optional().openapi({
      description: 'The notification id (Herald’s idempotency key); the same again sends nothing twice',
    }),
    actor: z
      .union([z.string().min(1).max(256), NovuSubscriberSchema])
      .optional()
      .openapi({
        description: 'The subscriber who caused it: left out of a topic’s recipients',
      }),
    overrides: z.record(z.string(), z.unknown()).optional().openapi(ignored('provider overrides')),
    tenant: z
      .union([z.string(), z.record(z.string(), z.unknown())])
      .optional()
      .openapi(ignored('tenants')),
    context: z.record(z.string(), z.unknown()).optional().openapi(ignored('contexts')),
    bridgeUrl: z.string().max(2048).optional().openapi(ignored('Herald has no bridge')),
    agentId: z.string().max(256).nullable().optional().openapi(ignored('Herald has no agents')),
  })
  .openapi('NovuTriggerEvent');

export const NovuBulkTriggerSchema = z
  .object({ events: z.array(NovuTriggerSchema).min(1).max(100) })
  .openapi('NovuBulkTriggerEvent');

export const NovuTriggerResultSchema = z
  .object({
    acknowledged: z.boolean(),
    status: z.enum(['processed', 'error']),
    transactionId: z.string().optional(),
    error: z.array(z.string()).optional(),
  })
  .openapi('NovuTriggerResult');

export const NovuCreateSubscriberSchema = NovuSubscriberSchema.omit({ channels: true }).openapi(
  'NovuCreateSubscriber',
);

export const NovuSubscriberResponseSchema = z
  .object({
    _id: z.string().openapi({ description: 'The subscriber id (Herald has no other id)' }),
    subscriberId: z.string(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
    locale: z.string().nullable(),
    timezone: z.string().nullable(),
    _organizationId: z.string().openapi({ description: 'Always `herald`: a deployment is one organization' }),
    _environmentId: z.string().openapi({ description: 'Always `herald`: a deployment is one environment' }),
    deleted: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('NovuSubscriber');

export const NovuUpsertTopicSchema = z
  .object({
    key: z.string().min(1).max(256).openapi({ description: 'The topic key (a Herald id)' }),
    name: z.string().min(1).max(256).optional(),
    data: z
      .record(z.string(), z.unknown())
      .nullable()
      .optional()
      .openapi(ignored('a Herald topic holds no data')),
  })
  .openapi('NovuUpsertTopic');

export const NovuTopicSchema = z
  .object({
    _id: z.string().openapi({ description: 'The key (Herald has no other id)' }),
    key: z.string(),
    name: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('NovuTopic');

export const NovuTopicSubscriptionsSchema = z
  .object({
    subscriberIds: z.array(z.string().min(1).max(256)).max(1000).optional(),
    subscriptions: z
      .array(
        z.union([
          z.string().min(1).max(256),
          z.object({ identifier: z.string().max(256).optional(), subscriberId: z.string().min(1).max(256) }),
        ]),
      )
      .max(1000)
      .optional()
      .openapi({ description: 'Subscriber ids, or `{ subscriberId }` (an `identifier` is ignored)' }),
    name: z.string().min(1).max(256).optional().openapi({ description: 'The name of a topic created here' }),
    context: z.record(z.string(), z.unknown()).optional().openapi(ignored('contexts')),
    preferences: z.array(z.unknown()).optional().openapi(ignored('Herald keeps preferences per user')),
  })
  .openapi('NovuTopicSubscriptions');

export const NovuSubscriptionSchema = z
  .object({
    _id: z.string(),
    identifier: z.string(),
    topic: z.object({ _id: z.string(), key: z.string(), name: z.string().optional() }),
    subscriber: z.object({ _id: z.string(), subscriberId: z.string() }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('NovuSubscription');
