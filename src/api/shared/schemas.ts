import { z } from '@hono/zod-openapi';
import { CHANNELS, EXTERNAL_PLATFORMS, PRIORITIES, PUSH_PLATFORMS } from '../../domain/channels';
import { APNS_TOKEN, E164, FCM_TOKEN, parseWebPushSubscription } from '../../domain/contact-rules';
import { ID_MAX_LENGTH, ID_PATTERN, TYPE_MAX_LENGTH, TYPE_PATTERN } from '../../domain/identifiers';
import { STATUSES } from '../../domain/status';

/** Ids in paths and bodies: printable, no separators that could confuse logs or keys. */
export const IdSchema = z
  .string()
  .min(1)
  .max(ID_MAX_LENGTH)
  .regex(ID_PATTERN, 'may contain letters, digits and . _ : @ + - only');

export const UserIdParam = z.object({
  userId: IdSchema.openapi({ param: { name: 'userId', in: 'path' }, example: 'user_123' }),
});

export const TypeSchema = z
  .string()
  .min(1)
  .max(TYPE_MAX_LENGTH)
  .regex(TYPE_PATTERN, 'lower-case letters, digits, _ and - only')
  .openapi({ example: 'payment_reminder' });

const EmailSchema = z.email({ message: 'must be a valid email address' }).max(254);
const PhoneSchema = z.string().regex(E164, 'must be an E.164 phone number such as +14155550123');
const LocaleSchema = z
  .string()
  .max(35)
  .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a BCP 47 language tag such as fr-CA');
const TimezoneSchema = z
  .string()
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'must be an IANA time zone such as Europe/Paris');

export const DeviceTokenSchema = z
  .object({
    deviceToken: z.string().min(1).max(4096),
    platform: z.enum(PUSH_PLATFORMS),
  })
  .strict()
  .superRefine((value, ctx) => {
    const problem = deviceTokenProblem(value.platform, value.deviceToken);
    if (problem) ctx.addIssue({ code: 'custom', path: ['deviceToken'], message: problem });
  })
  .openapi('DeviceToken', { example: { deviceToken: 'a'.repeat(64), platform: 'apns' } });

function deviceTokenProblem(platform: (typeof PUSH_PLATFORMS)[number], token: string): string | null {
  switch (platform) {
    case 'apns':
      return APNS_TOKEN.test(token) ? null : 'an APNs token is 64 hexadecimal characters';
    case 'fcm':
      return FCM_TOKEN.test(token) ? null : 'an FCM registration token is 100 or more URL-safe characters';
    case 'webpush':
      return parseWebPushSubscription(token)
        ? null
        : 'a web push token is the PushSubscription JSON with an https endpoint and p256dh/auth keys';
  }
}

export const ExternalChannelSchema = z
  .object({
    platform: z.enum(EXTERNAL_PLATFORMS),
    url: z.url().max(2048).optional(),
    chatId: z
      .string()
      .max(64)
      .regex(/^(-?\d+|@[A-Za-z0-9_]{5,32})$/, 'a Telegram chat id or @channelusername')
      .optional(),
    secret: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/=]{16,}$/, 'a Standard Webhooks secret (whsec_ followed by base64)')
      .optional(),
    status: z.boolean().default(true),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.platform === 'telegram') {
      if (!value.chatId)
        ctx.addIssue({ code: 'custom', path: ['chatId'], message: 'telegram channels need a chatId' });
    } else if (!value.url) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: `${value.platform} channels need a url` });
    }
    if (value.secret && value.platform !== 'webhook') {
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message: 'only webhook channels take a signing secret',
      });
    }
  })
  .openapi('ExternalChannel', {
    example: { platform: 'slack', url: 'https://hooks.slack.com/services/T000/B000/XXXX', status: true },
  });

export const ContactInputSchema = z
  .object({
    email: EmailSchema.nullable().optional(),
    phone: PhoneSchema.nullable().optional(),
    deviceTokens: z.array(DeviceTokenSchema).max(50).optional(),
    externalChannels: z.array(ExternalChannelSchema).max(50).optional(),
    locale: LocaleSchema.nullable().optional(),
    timezone: TimezoneSchema.nullable().optional(),
  })
  .strict()
  .openapi('ContactInput');

export const ContactSchema = z
  .object({
    userId: z.string(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
    deviceTokens: z.array(z.object({ deviceToken: z.string(), platform: z.enum(PUSH_PLATFORMS) })),
    externalChannels: z.array(
      z.object({
        platform: z.enum(EXTERNAL_PLATFORMS),
        url: z.string().optional(),
        chatId: z.string().optional(),
        status: z.boolean(),
        secretSet: z.boolean().optional().openapi({
          description:
            'Webhook channels: whether a signing secret is set. The secret itself is write-only: no route returns it.',
        }),
      }),
    ),
    locale: z.string().nullable(),
    timezone: z.string().nullable(),
    smsOptedOut: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Contact');

export const InlineRecipientSchema = z
  .object({
    userId: IdSchema.optional(),
    email: EmailSchema.optional(),
    phone: PhoneSchema.optional(),
    deviceTokens: z.array(DeviceTokenSchema).max(50).optional(),
    externalChannels: z.array(ExternalChannelSchema).max(50).optional(),
    locale: LocaleSchema.optional(),
    timezone: TimezoneSchema.optional(),
  })
  .strict()
  .refine((r) => r.userId || r.email || r.phone || r.deviceTokens?.length || r.externalChannels?.length, {
    message: 'a recipient needs a userId or at least one address',
  });

export const TopicKeySchema = IdSchema.openapi({ example: 'project_42_followers' });

export const TopicRecipientSchema = z
  .object({
    topic: TopicKeySchema,
    exclude: z
      .array(IdSchema)
      .max(1000)
      .optional()
      .openapi({ description: 'Subscribers this entry leaves out' }),
  })
  .strict()
  .openapi('TopicRecipient', {
    description:
      "Every subscriber of the topic (expanded through the queues after the answer, each user once per notification even when in several topics), less `exclude`, the notification's `actor` and the users it names directly.",
    example: { topic: 'project_42_followers', exclude: ['user_7'] },
  });

/** Template data is bounded so a notification always fits a queue message with room to spare. */
export const MAX_DATA_BYTES = 32 * 1024;
const DataSchema = z
  .record(z.string(), z.unknown())
  .refine((d) => new TextEncoder().encode(JSON.stringify(d)).length <= MAX_DATA_BYTES, {
    message: `must serialize to at most ${MAX_DATA_BYTES} bytes`,
  });

export const NotificationInputSchema = z
  .object({
    id: IdSchema.optional().openapi({ description: 'Idempotency key; generated when absent.' }),
    type: TypeSchema,
    source: z.string().min(1).max(128).optional(),
    recipients: z
      .array(z.union([IdSchema, InlineRecipientSchema, TopicRecipientSchema]))
      .min(1)
      .max(100)
      .openapi({
        description: 'User ids, inline recipients (addresses given here), and topics (`{ "topic": key }`).',
      }),
    actor: IdSchema.optional().openapi({
      description: 'The user who caused the notification: never reached through a topic.',
    }),
    channels: z.array(z.enum(CHANNELS)).min(1).max(CHANNELS.length).optional(),
    data: DataSchema.optional(),
    priority: z.enum(PRIORITIES).optional(),
    sendAt: z.iso.datetime({ offset: true }).optional(),
    dedupeKey: z.string().min(1).max(256).optional(),
    cancelKey: z.string().min(1).max(256).optional().openapi({
      description: 'Cancel every notification sharing it at once: DELETE /v1/notifications?cancelKey=',
    }),
  })
  .strict()
  .openapi('NotificationInput', {
    example: {
      type: 'payment_reminder',
      recipients: ['user_123'],
      data: { amount: '42.00', currency: 'EUR', due_date: '2026-12-01' },
    },
  });

/** The seed's EventBridge-style event, accepted verbatim. */
export const EventBridgeEventSchema = z
  .object({
    id: IdSchema,
    source: z.string().min(1).max(256),
    'detail-type': z.union([z.string().min(1).max(128), z.array(z.string().min(1).max(128)).min(1).max(10)]),
    resources: z.array(z.string().max(2048)).max(20).optional(),
    detail: z.record(z.string(), z.unknown()),
    time: z.string().max(64).optional(),
    region: z.string().max(64).optional(),
    account: z.string().max(64).optional(),
    version: z.string().max(16).optional(),
  })
  .strict()
  .openapi('EventBridgeEvent');

export const AcceptedSchema = z
  .object({
    id: z.string(),
    topics: z
      .array(z.string())
      .optional()
      .openapi({ description: "Topics whose subscribers' deliveries are being added, through the queues" }),
    deliveries: z.array(
      z.object({
        id: z.string(),
        userId: z.string().nullable(),
        channel: z.enum(CHANNELS),
        status: z.enum(STATUSES),
        reason: z.string().optional(),
      }),
    ),
  })
  .openapi('Accepted');

export const HistoryEntrySchema = z.object({
  status: z.enum(STATUSES),
  at: z.string(),
  reason: z.string().optional(),
  provider: z.string().optional(),
});

/**
 * Where a delivery went, as the caller may see it: whole for a key with `contacts:read` (or
 * admin), masked otherwise (src/domain/masking.ts); a webhook's secret only as `secretSet`.
 * Null once the user was erased, or when the row cannot be read.
 */
export const AddressViewSchema = z
  .object({ channel: z.enum(CHANNELS) })
  .catchall(z.unknown())
  .nullable()
  .openapi('DeliveryAddress', {
    description:
      "Whole with contacts:read or admin; masked otherwise (a***@example.com, +1415***0123, a device token's last 6 characters, a URL's host). Never a webhook secret: `secretSet` says whether one is set. Null after erasure.",
    example: { channel: 'email', email: 'a***@example.com' },
  });

export const DeliverySchema = z
  .object({
    id: z.string(),
    userId: z.string().nullable(),
    channel: z.enum(CHANNELS),
    address: AddressViewSchema,
    status: z.enum(STATUSES),
    reason: z.string().nullable(),
    provider: z.string().nullable(),
    providerMessageId: z.string().nullable(),
    attempts: z.number(),
    templateVersion: z.string().nullable(),
    history: z.array(HistoryEntrySchema),
    createdAt: z.string(),
    updatedAt: z.string(),
    sentAt: z.string().nullable(),
  })
  .openapi('Delivery');

export const NotificationSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    source: z.string().nullable(),
    priority: z.enum(PRIORITIES),
    data: z.record(z.string(), z.unknown()),
    channels: z.array(z.enum(CHANNELS)).nullable(),
    sendAt: z.string().nullable(),
    cancelKey: z.string().nullable(),
    createdAt: z.string(),
    deliveries: z.array(DeliverySchema),
    deliveriesTruncated: z.boolean().optional().openapi({
      description:
        'True when the notification has more than 1,000 deliveries (a send to a large topic): `deliveries` holds the first 1,000 in id order; GET /v1/notifications/{id}/deliveries pages through all of them.',
    }),
  })
  .openapi('Notification');

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');
