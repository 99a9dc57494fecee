import { z } from 'zod';
import { databasesOf, MAX_SHARD_DATABASES, parseShardMap } from '../domain/shards';
import type { InboxObject } from '../durable/inbox';
import type { Recipient } from '../durable/recipient';
import type { QueueMessage, TopicPageMessage } from '../queue/messages';
import type { ChannelQueues } from '../queue/producer';

/** A binding is an object with the methods Herald calls on it; anything else is a deployment error. */
function binding<T>(kind: string, methods: readonly string[]) {
  return z.custom<T>(
    // `in`, not a read: reading a binding's method may have effects (a proxy, a lazy stub).
    (value) => typeof value === 'object' && value !== null && methods.every((m) => m in value),
    { message: `must be a ${kind} binding (see wrangler.toml)` },
  );
}

const queue = binding<Queue<QueueMessage>>('Queue', ['send', 'sendBatch']);
const topicQueue = binding<Queue<TopicPageMessage>>('Queue', ['send', 'sendBatch']);

/** A text var or secret; absent and empty are both "not set". */
const text = z.string().optional();

/** A number written as text (vars are strings), within bounds. */
function numberText(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, { message: 'must be a number', abort: true })
    .refine((value) => Number(value) >= min && Number(value) <= max, `must be between ${min} and ${max}`)
    .optional();
}

const providerList = z
  .string()
  .regex(/^[\s,a-z0-9-]*$/i, 'must be a comma-separated list of provider names')
  .optional();

/** Where development fallbacks (a fixed blind-index key) are allowed. */
const LOCAL_ENVIRONMENTS: ReadonlySet<string> = new Set(['development', 'test']);

/**
 * Every binding, var and secret Herald reads (see wrangler.toml and the README's configuration
 * table). Provider credentials are optional here: a provider checks its own when it is listed.
 */
const d1 = binding<D1Database>('D1', ['prepare', 'batch']);

/** Shard databases `DB_0` … `DB_63`: a user's contact, preferences and deliveries live in the one SHARD_MAP names. */
const shardDatabases = Object.fromEntries(
  Array.from({ length: MAX_SHARD_DATABASES }, (_, i) => [`DB_${i}`, d1.optional()]),
) as Record<`DB_${number}`, ReturnType<typeof d1.optional>>;

export const envSchema = z.object({
  /** The home database: cross-user data (keys, suppressions, operations), and every bucket when no SHARD_MAP. */
  DB: d1,
  ...shardDatabases,
  /**
   * Buckets (0-255, a hash of the user id) → database binding, e.g. `0-127:DB_0,128-255:DB_1`.
   * Unset: every bucket in DB.
   */
  SHARD_MAP: z.string().max(4000).optional(),
  TEMPLATES: binding<R2Bucket>('R2', ['get', 'put', 'list']),
  RECIPIENT: binding<DurableObjectNamespace<Recipient>>('Durable Object namespace', ['idFromName', 'get']),
  /** One Durable Object per user: the in-app inbox and its WebSockets. */
  INBOX: binding<DurableObjectNamespace<InboxObject>>('Durable Object namespace', ['idFromName', 'get']),
  QUEUE_EMAIL: queue,
  QUEUE_SMS: queue,
  QUEUE_PUSH: queue,
  QUEUE_CHAT: queue,
  QUEUE_WEBHOOK: queue,
  QUEUE_INAPP: queue,
  DLQ_EMAIL: queue,
  DLQ_SMS: queue,
  DLQ_PUSH: queue,
  DLQ_CHAT: queue,
  DLQ_WEBHOOK: queue,
  DLQ_INAPP: queue,
  /** A topic send's expansion, page by page (src/services/ingest/topic-expansion.ts). */
  QUEUE_TOPICS: topicQueue,
  DLQ_TOPICS: topicQueue,
  /** Analytics Engine dataset: one data point per status change, when bound. */
  ANALYTICS: binding<AnalyticsEngineDataset>('Analytics Engine', ['writeDataPoint']).optional(),
  /** The retention archive (R2): deliveries removed from D1 after `RETENTION_DAYS` are kept here. */
  ARCHIVE: binding<R2Bucket>('R2', ['get', 'put', 'list']).optional(),
  /** Per-API-key request limit (`[[ratelimits]]`); absent = no limit. */
  API_RATE_LIMITER: binding<RateLimit>('rate limiting', ['limit']).optional(),

  /** `development` enables loopback URLs and the sandbox outbox API; `production` by default. */
  ENVIRONMENT: z.enum(['production', 'staging', 'development', 'test']).optional(),
  /** Bootstrap admin key (secret). */
  ADMIN_API_KEY: text,
  /** Public origin of this deployment, for callback, tracking and unsubscribe links. */
  PUBLIC_BASE_URL: z.url({ protocol: /^https?$/, message: 'must be an http(s) origin' }).optional(),
  /** HMAC key for unsubscribe and tracking tokens and dashboard sessions; signs everything (secret). */
  SIGNING_SECRET: text,
  /**
   * Secrets SIGNING_SECRET replaced, comma-separated, newest first: links, pixels and sessions
   * they signed still verify (nothing is signed with them). Keep one for at least 60 days (secret).
   */
  SIGNING_SECRET_PREVIOUS: text,
  /** `kid:base64key[,kid:base64key…]`: the first encrypts, all decrypt (secret). */
  DATA_ENCRYPTION_KEY: text,
  /**
   * Key for equality lookups on personal data (the suppression list), 32+ bytes of base64; never
   * rotated with SIGNING_SECRET. Required in production and staging (secret).
   */
  BLIND_INDEX_KEY: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9+/_-]{43,}={0,2}$/, 'must be at least 32 bytes of base64 (openssl rand -base64 32)')
    .optional(),
  EMAIL_PROVIDERS: providerList,
  SMS_PROVIDERS: providerList,
  PUSH_PROVIDERS: providerList,
  CHAT_PROVIDERS: providerList,
  WEBHOOK_PROVIDERS: providerList,
  /** The in-app channel's providers; `inbox` (Herald's own) when unset. */
  INAPP_PROVIDERS: providerList,
  /** Items kept per inbox, newest first (default 1,000). */
  INBOX_MAX_ITEMS: numberText(1, 100_000),
  /** Origins allowed to call the inbox client routes from a browser, comma-separated (`*`: any). */
  INBOX_ALLOWED_ORIGINS: text,
  ALERT_WEBHOOK_URL: text,
  /** Deliveries older than this many days are archived to R2 and removed from D1 (default 30). */
  RETENTION_DAYS: numberText(1, 36_500),
  /** Alert when the oldest due delivery has waited longer than this (seconds, default 300). */
  BACKLOG_ALERT_SECONDS: numberText(1, 10 * 366 * 86_400),

  // Fault injection for local chaos runs (see the README); rates are shares of sends.
  SANDBOX_FAIL_RATE: numberText(0, 1),
  SANDBOX_429_RATE: numberText(0, 1),
  SANDBOX_PERMANENT_RATE: numberText(0, 1),
  SANDBOX_TIMEOUT_RATE: numberText(0, 1),
  SANDBOX_CRASH_RATE: numberText(0, 1),
  SANDBOX_LATENCY_MS: numberText(0, 30_000),
  /** Share of calls before which a Recipient object drops its memory, as an eviction would (development/test only). */
  FAULT_EVICT_RATE: numberText(0, 1),
  /** A share of the consumer's D1 commits refused, as by an overloaded or full database. */
  FAULT_D1_WRITE_RATE: numberText(0, 1),
  /** A share of template reads from R2 that fail. */
  FAULT_R2_READ_RATE: numberText(0, 1),
  /** Shrinks retry delays for local chaos runs (0 < scale < 1); never set in production. */
  RETRY_DELAY_SCALE: numberText(0, 1),

  // Provider settings and credentials (README, "Providers").
  EMAIL_FROM: text,
  EMAIL_REPLY_TO: text,
  RESEND_API_KEY: text,
  RESEND_BASE_URL: text,
  RESEND_WEBHOOK_SECRET: text,
  SENDGRID_API_KEY: text,
  SENDGRID_BASE_URL: text,
  SENDGRID_WEBHOOK_PUBLIC_KEY: text,
  POSTMARK_SERVER_TOKEN: text,
  POSTMARK_BASE_URL: text,
  POSTMARK_MESSAGE_STREAM: text,
  POSTMARK_WEBHOOK_USER: text,
  POSTMARK_WEBHOOK_PASSWORD: text,
  MAILGUN_API_KEY: text,
  MAILGUN_DOMAIN: text,
  MAILGUN_BASE_URL: text,
  MAILGUN_WEBHOOK_SIGNING_KEY: text,
  AWS_ACCESS_KEY_ID: text,
  AWS_SECRET_ACCESS_KEY: text,
  AWS_SESSION_TOKEN: text,
  AWS_REGION: text,
  SES_BASE_URL: text,
  SES_CONFIGURATION_SET: text,
  TWILIO_ACCOUNT_SID: text,
  TWILIO_AUTH_TOKEN: text,
  TWILIO_FROM: text,
  TWILIO_MESSAGING_SERVICE_SID: text,
  TWILIO_BASE_URL: text,
  VONAGE_API_KEY: text,
  VONAGE_API_SECRET: text,
  VONAGE_FROM: text,
  VONAGE_BASE_URL: text,
  VONAGE_SIGNATURE_SECRET: text,
  VONAGE_SIGNATURE_METHOD: text,
  APNS_KEY_ID: text,
  APNS_TEAM_ID: text,
  APNS_PRIVATE_KEY: text,
  APNS_TOPIC: text,
  APNS_ENVIRONMENT: text,
  APNS_BASE_URL: text,
  FCM_SERVICE_ACCOUNT: text,
  FCM_BASE_URL: text,
  GOOGLE_OAUTH_TOKEN_URL: text,
  VAPID_PUBLIC_KEY: text,
  VAPID_PRIVATE_KEY: text,
  VAPID_SUBJECT: text,
  TELEGRAM_BOT_TOKEN: text,
  TELEGRAM_BASE_URL: text,
  WEBHOOK_SIGNING_SECRET: text,
});

/**
 * Outside development and test (ENVIRONMENT unset is production) the suppression list needs its
 * own key: deriving it from SIGNING_SECRET would empty the list at every rotation.
 */
function requireBlindIndexKey(env: z.infer<typeof envSchema>, ctx: z.RefinementCtx): void {
  if (env.BLIND_INDEX_KEY !== undefined || LOCAL_ENVIRONMENTS.has(env.ENVIRONMENT ?? 'production')) return;
  ctx.addIssue({
    code: 'custom',
    path: ['BLIND_INDEX_KEY'],
    message: `is required when ENVIRONMENT is ${env.ENVIRONMENT ?? 'production (unset)'}: set it with wrangler secret put BLIND_INDEX_KEY (openssl rand -base64 32)`,
  });
}

/** SHARD_MAP must name every bucket once, and only databases that are bound. */
function requireShardDatabases(env: z.infer<typeof envSchema>, ctx: z.RefinementCtx): void {
  const parsedMap = parseShardMap(env.SHARD_MAP);
  if ('problem' in parsedMap) {
    ctx.addIssue({ code: 'custom', path: ['SHARD_MAP'], message: parsedMap.problem });
    return;
  }
  for (const name of databasesOf(parsedMap.map)) {
    if (!(name in env) || (env as Record<string, unknown>)[name] === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['SHARD_MAP'],
        message: `names ${name}, which is not a bound D1 database`,
      });
    }
  }
}

/** The schema with the rules between its variables: what parseEnv applies. */
const checkedEnvSchema = envSchema.superRefine(requireBlindIndexKey).superRefine(requireShardDatabases);

/** The Worker's bindings, vars and secrets, as parsed at the edge of the Worker. */
export type Env = z.infer<typeof envSchema> & ChannelQueues;

/** Thrown when the Worker's configuration is unusable; names every variable at fault, never a value. */
export class EnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`configuration: ${problems.join('; ')}`);
    this.name = 'EnvError';
  }
}

/** One parse per env object: the runtime hands an isolate the same one, so this runs once per isolate. */
const parsed = new WeakMap<object, Env>();

/**
 * Parses the raw env the runtime hands the Worker. Fails with an EnvError naming each missing
 * binding or malformed variable; unknown names are dropped, so code can read only what is declared.
 */
export function parseEnv(raw: unknown): Env {
  if (typeof raw !== 'object' || raw === null) throw new EnvError(['env: not an object']);
  const hit = parsed.get(raw);
  if (hit) return hit;
  const result = checkedEnvSchema.safeParse(withoutEmptyStrings(raw as Record<string, unknown>));
  if (!result.success) {
    throw new EnvError(result.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`));
  }
  const env = result.data as Env;
  parsed.set(raw, env);
  return env;
}

/** An empty var (`FOO = ""`) means "not set", as it always has for Herald's readers. */
function withoutEmptyStrings(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== ''));
}

export const isDevelopment = (env: Pick<Env, 'ENVIRONMENT'>): boolean => env.ENVIRONMENT === 'development';
