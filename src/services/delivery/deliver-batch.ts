import type { Address } from '../../domain/address';
import type { Channel } from '../../domain/channels';
import type { Contact } from '../../domain/contact';
import type { DeliveryToSend } from '../../domain/delivery';
import type { RenderedMessage } from '../../domain/message';
import { NO_PREFERENCES, type Preferences, preferenceVerdict } from '../../domain/preferences';
import { LEASE_MS, type Verdict } from '../../domain/recipient-rules';
import { hasAttemptsLeft, MAX_QUEUE_DELAY_SECONDS, retryDelaySeconds } from '../../domain/retry';
import { FINAL_FOR_SENDING } from '../../domain/status';
import type { TypeConfig } from '../../domain/type-config';
import { log } from '../../lib/log';
import { configuredProviderNames, type ProviderRegistry, providersFor } from '../../providers/registry';
import { IDEMPOTENT_CHANNELS, sandboxFaultsFromEnv } from '../../providers/sandbox';
import type { ProviderDeps, SendRequest, SendResult } from '../../providers/types';
import type { Outcome } from '../../storage/deliveries-repo';
import type { Services } from '../container';
import { raiseAlert } from '../operations/alerts';
import { recordStatusChange } from '../operations/metrics';
import { providerSwitches } from '../operations/provider-switches';
import { renderTemplate, TemplateError } from '../templates/render';
import { trackMessage } from '../tracking/opens-and-clicks';
import { unsubscribeUrl, withUnsubscribe } from '../tracking/unsubscribe';
import { sendWithFailover } from './failover';
import { decideBatch, releaseUnsent } from './recipient-gate';

/** What the queue consumer does with one delivery id after this batch. */
export type Decision =
  | { kind: 'done' }
  /** Try again after a failed attempt (counts against the queue's retries). */
  | { kind: 'retry'; delaySeconds: number }
  /** Not yet: scheduled for later, or deferred by politeness; re-sent as a new message. */
  | { kind: 'wait'; delaySeconds: number }
  | { kind: 'dead'; reason: string };

/** The sandbox's injected consumer death (SANDBOX_CRASH_RATE); the batch is retried whole. */
export class SandboxCrash extends Error {
  constructor() {
    super('sandbox: injected consumer crash after sending');
    this.name = 'SandboxCrash';
  }
}

/** How many deliveries of a batch are in flight to providers at once. */
const CONCURRENCY = 8;

/** Delay before retrying a batch that could not start (a misconfigured provider, say). */
const CONFIG_RETRY_SECONDS = 60;

/**
 * How long a delivery id without a row is waited for. Ingest hands deliveries to the queue before
 * it writes their rows, so a fast consumer can get there first; after this, the write failed (the
 * producer got an error) and the message is dropped.
 */
export const MISSING_ROW_GRACE_MS = 2 * 60 * 1000;
const MISSING_ROW_RETRY_SECONDS = 2;

/** How long a delivery may wait on open circuits without it counting as attempts. */
const CIRCUIT_WAIT_HORIZON_MS = 24 * 3600 * 1000;

/** Delay before asking again when the recipient's object was unreachable or another consumer holds the lease. */
const RECIPIENT_RETRY_SECONDS = 30;

interface Pending {
  outcome: Outcome;
  decision: Decision;
  cleanup?: Cleanup;
  code?: string;
  platform?: string;
}

/**
 * Delivers one queue batch of a channel: one query loads every delivery, providers are called,
 * and every outcome (status, outbox, contact cleanup) is written in one D1 batch.
 */
export async function deliverBatch(
  services: Services,
  registry: ProviderRegistry,
  channel: Channel,
  ids: readonly string[],
  deps?: ProviderDeps,
  /** When ingest handed each id to the queue (from the message); absent ids are not waited for. */
  handedAt?: ReadonlyMap<string, number>,
): Promise<Map<string, Decision>> {
  const now = services.now();
  const decisions = new Map<string, Decision>();
  const loaded = await services.deliveries.loadForSending(ids);
  const captured: SendRequest[] = [];

  let chain: ReturnType<ProviderRegistry['chain']>;
  try {
    const switches = await providerSwitches(services.env.DB, now);
    const sandbox = configuredProviderNames(services.env, channel).includes('sandbox')
      ? {
          faults: sandboxFaultsFromEnv(services.env),
          alreadySent: IDEMPOTENT_CHANNELS.has(channel)
            ? await services.outbox.capturedIds(ids)
            : new Set<string>(),
        }
      : {};
    chain = registry.chain(
      services.env,
      channel,
      (request) => captured.push(request),
      deps,
      switches,
      sandbox,
    );
  } catch (error) {
    // A listed provider without credentials: say so loudly and keep the messages for when it is fixed.
    const message = error instanceof Error ? error.message : String(error);
    await raiseAlert(services, `provider-config:${channel}`, `${channel} delivery is blocked: ${message}`);
    for (const id of ids) decisions.set(id, { kind: 'retry', delaySeconds: CONFIG_RETRY_SECONDS });
    return decisions;
  }

  const userIds = [...loaded.values()].map((d) => d.userId).filter((u): u is string => u !== null);
  const contacts = userIds.length > 0 ? await services.contacts.getMany(userIds) : new Map<string, Contact>();

  const todo: DeliveryToSend[] = [];
  for (const id of ids) {
    const delivery = loaded.get(id);
    if (!delivery) {
      const since = handedAt?.get(id);
      if (since !== undefined && now - since < MISSING_ROW_GRACE_MS) {
        log('info', 'delivery.not_written_yet', { deliveryId: id, channel, waitedMs: now - since });
        decisions.set(id, { kind: 'wait', delaySeconds: MISSING_ROW_RETRY_SECONDS });
      } else {
        log('warn', 'delivery.missing', { deliveryId: id, channel });
        decisions.set(id, { kind: 'done' });
      }
    } else if (FINAL_FOR_SENDING.has(delivery.status)) {
      decisions.set(id, { kind: 'done' });
    } else if (delivery.sendAtMs !== null && delivery.sendAtMs - now > 1000) {
      const delaySeconds = Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil((delivery.sendAtMs - now) / 1000));
      decisions.set(id, { kind: 'wait', delaySeconds });
    } else {
      todo.push(delivery);
    }
  }

  const configs = new Map<string, TypeConfig>();
  for (const type of new Set(todo.map((d) => d.type))) {
    configs.set(type, await services.templates.typeConfig(type));
  }

  // The user's wishes first (opt-outs, quiet hours), so an unwanted delivery takes no rate slot.
  const pending = new Map<string, Pending>();
  const wanted: DeliveryToSend[] = [];
  const preferenceUsers = todo.map((d) => d.userId).filter((u): u is string => u !== null);
  const preferences =
    preferenceUsers.length > 0
      ? await services.preferences.getMany(preferenceUsers)
      : new Map<string, Preferences>();
  for (const delivery of todo) {
    const contact = delivery.userId ? contacts.get(delivery.userId) : undefined;
    const settings = (delivery.userId && preferences.get(delivery.userId)) || NO_PREFERENCES;
    const verdict = preferenceVerdict(
      settings,
      delivery,
      configs.get(delivery.type) ?? {},
      contact?.timezone ?? null,
      now,
    );
    if (verdict.verdict === 'send') {
      wanted.push(delivery);
    } else if (verdict.verdict === 'suppress') {
      pending.set(delivery.id, {
        outcome: { deliveryId: delivery.id, status: 'suppressed', reason: verdict.reason, attempted: false },
        decision: { kind: 'done' },
      });
    } else {
      const delaySeconds = Math.min(
        MAX_QUEUE_DELAY_SECONDS,
        Math.max(1, Math.ceil((verdict.untilMs - now) / 1000)),
      );
      pending.set(delivery.id, {
        outcome: { deliveryId: delivery.id, status: 'deferred', reason: verdict.reason, attempted: false },
        decision: { kind: 'wait', delaySeconds },
      });
    }
  }

  const verdicts = await decideBatch(services, wanted, configs, now);
  const allowed: DeliveryToSend[] = [];
  for (const delivery of wanted) {
    const verdict = verdicts.get(delivery.id);
    const politeness: ReturnType<typeof politenessOutcome> = verdict
      ? politenessOutcome(delivery, verdict, now)
      : { decision: { kind: 'wait', delaySeconds: RECIPIENT_RETRY_SECONDS } };
    if (politeness === 'send') allowed.push(delivery);
    else if (isPending(politeness)) pending.set(delivery.id, politeness);
    else decisions.set(delivery.id, politeness.decision);
  }

  for (let i = 0; i < allowed.length; i += CONCURRENCY) {
    await Promise.all(
      allowed.slice(i, i + CONCURRENCY).map(async (delivery) => {
        const contact = delivery.userId ? contacts.get(delivery.userId) : undefined;
        const config = configs.get(delivery.type) ?? {};
        pending.set(delivery.id, await deliverOne(services, registry, chain, delivery, contact, config));
      }),
    );
  }
  const unsent = allowed.filter((d) => pending.get(d.id)?.outcome.status !== 'sent');
  if (unsent.length > 0)
    await releaseUnsent(
      services,
      unsent.map((delivery) => ({ delivery, nowMs: now })),
    );

  if (spareMassPrune(channel, pending)) {
    await raiseAlert(
      services,
      'apns-bad-device-token-batch',
      'APNs answered BadDeviceToken for every token of a batch: check APNS_ENVIRONMENT (sandbox/production) and APNS_TOPIC; tokens were kept',
    );
  }

  const outboxStatements = captured.map((request) =>
    services.outbox.insertStatement(
      {
        deliveryId: request.deliveryId,
        notificationId: request.notificationId,
        userId: loaded.get(request.deliveryId)?.userId ?? null,
        channel,
        address: request.address,
        message: request.message,
      },
      now,
    ),
  );
  const crashRate = sandboxFaultsFromEnv(services.env).crashRate;
  if (crashRate > 0 && captured.length > 0 && Math.random() < crashRate) {
    // Chaos: the messages went out (the outbox has them) but the consumer dies before recording it.
    if (outboxStatements.length > 0) await services.env.DB.batch(outboxStatements);
    throw new SandboxCrash();
  }

  const statements: D1PreparedStatement[] = [...outboxStatements];
  for (const [id, p] of pending) {
    statements.push(services.deliveries.outcomeStatement(p.outcome, now));
    decisions.set(id, p.decision);
  }
  const cleanups = [...pending.values()].flatMap((p) => (p.cleanup ? [p.cleanup] : []));
  statements.push(...(await cleanupStatements(services, cleanups, contacts, now)));
  if (statements.length > 0) await services.env.DB.batch(statements);
  for (const [id, p] of pending) {
    const d = loaded.get(id);
    if (d) {
      recordStatusChange(services.env, {
        deliveryId: id,
        notificationId: d.notificationId,
        channel,
        type: d.type,
        status: p.outcome.status,
        provider: p.outcome.provider ?? null,
      });
    }
  }
  return decisions;
}

/**
 * Maps the recipient's verdict to what happens now: send, or an outcome without a provider call
 * (`duplicate`, `rate_limited`, `deferred`), or a plain wait (another consumer holds the lease).
 */
function politenessOutcome(
  delivery: DeliveryToSend,
  verdict: Verdict,
  now: number,
): 'send' | Pending | { decision: Decision } {
  const base = { deliveryId: delivery.id, attempted: false };
  switch (verdict.verdict) {
    case 'send':
      return 'send';
    case 'leased':
      return { decision: { kind: 'wait', delaySeconds: Math.ceil(LEASE_MS / 1000) } };
    case 'duplicate':
      return {
        outcome: {
          ...base,
          status: 'duplicate',
          reason: `duplicate of ${verdict.firstDeliveryId} (same dedupe key within the window)`,
        },
        decision: { kind: 'done' },
      };
    case 'drop':
      return {
        outcome: {
          ...base,
          status: 'rate_limited',
          reason: `${delivery.channel} rate limit reached; low priority is dropped`,
        },
        decision: { kind: 'done' },
      };
    case 'defer': {
      const delaySeconds = Math.min(
        MAX_QUEUE_DELAY_SECONDS,
        Math.max(1, Math.ceil((verdict.untilMs - now) / 1000)),
      );
      return {
        outcome: {
          ...base,
          status: 'deferred',
          reason: `${delivery.channel} rate limit reached; next slot at ${new Date(verdict.untilMs).toISOString()}`,
        },
        decision: { kind: 'wait', delaySeconds },
      };
    }
  }
}

/**
 * `RETRY_DELAY_SCALE` (default 1) shrinks retry delays for chaos runs against the local stack, so
 * an hour of backoff plays out in a minute. Never set it in production.
 */
function scaleDelay(services: Services, seconds: number): number {
  const scale = Number(services.env.RETRY_DELAY_SCALE ?? 1);
  if (!Number.isFinite(scale) || scale <= 0 || scale >= 1) return seconds;
  return Math.max(1, Math.round(seconds * scale));
}

const isPending = (value: Pending | { decision: Decision }): value is Pending => 'outcome' in value;

async function deliverOne(
  services: Services,
  registry: ProviderRegistry,
  chain: ReturnType<ProviderRegistry['chain']>,
  delivery: DeliveryToSend,
  contact: Contact | undefined,
  config: TypeConfig,
): Promise<Pending> {
  const started = Date.now();
  const fail = (reason: string): Pending => ({
    outcome: { deliveryId: delivery.id, status: 'failed', reason, attempted: false },
    decision: { kind: 'done' },
  });
  if (!delivery.address) return fail('delivery has no address');

  const template = await services.templates.get(delivery.type, delivery.channel, contact?.locale);
  if (!template) return fail(`no ${delivery.channel} template for type ${delivery.type}`);
  let message: RenderedMessage;
  const unsubscribe = await unsubscribeUrl(services, delivery, config);
  try {
    message = await renderTemplate(template, {
      ...renderContext(delivery, delivery.address, contact),
      unsubscribe_url: unsubscribe,
    });
  } catch (error) {
    const reason =
      error instanceof TemplateError ? `template error in ${error.part}: ${error.message}` : String(error);
    return fail(reason);
  }

  if (unsubscribe && delivery.channel === 'email') message = withUnsubscribe(message, unsubscribe);
  message = await trackMessage(services, delivery, message, config);

  const providers = providersFor(chain, delivery.address);
  const { result, provider, tried } = await sendWithFailover(
    providers,
    {
      deliveryId: delivery.id,
      notificationId: delivery.notificationId,
      type: delivery.type,
      priority: delivery.priority,
      address: delivery.address,
      message,
    },
    registry.breaker,
    services.now,
  );
  for (const t of tried) {
    if (t.result !== 'circuit-open' && t.result.kind === 'permanent' && t.result.configError) {
      await raiseAlert(
        services,
        `provider-error:${t.provider}`,
        `${t.provider} refused a ${delivery.channel} send: ${t.result.reason}`,
      );
    }
  }
  log(result.kind === 'sent' ? 'info' : 'warn', 'delivery.attempt', {
    deliveryId: delivery.id,
    notificationId: delivery.notificationId,
    channel: delivery.channel,
    provider,
    providers: tried
      .map((t) => `${t.provider}:${t.result === 'circuit-open' ? 'circuit-open' : t.result.kind}`)
      .join(','),
    status: result.kind,
    reason: result.kind === 'sent' ? undefined : result.reason,
    attempt: delivery.attempts + 1,
    durationMs: Date.now() - started,
  });
  if (
    tried.length > 0 &&
    tried.every((t) => t.result === 'circuit-open') &&
    services.now() - Date.parse(delivery.createdAt) < CIRCUIT_WAIT_HORIZON_MS
  ) {
    // Nobody was called: not an attempt. Wait for the first circuit to let a trial through, so a
    // provider outage does not use up the attempts of every delivery that arrives meanwhile (for a
    // day at most: then open circuits count as attempts again, and the delivery can end).
    const delaySeconds = Math.max(
      1,
      Math.min(MAX_QUEUE_DELAY_SECONDS, result.kind === 'retryable' ? (result.retryAfterSeconds ?? 1) : 1),
    );
    return {
      outcome: {
        deliveryId: delivery.id,
        status: 'queued',
        reason: `every provider's circuit is open (${result.kind === 'sent' ? '' : result.reason}); next try in ${delaySeconds}s`,
        attempted: false,
      },
      decision: { kind: 'wait', delaySeconds },
    };
  }
  return toPending(services, delivery, result, provider, template.version);
}

function toPending(
  services: Services,
  delivery: DeliveryToSend,
  result: SendResult,
  provider: string,
  templateVersion: string,
): Pending {
  const base = { deliveryId: delivery.id, provider, templateVersion, attempted: true };
  switch (result.kind) {
    case 'sent':
      return {
        outcome: {
          ...base,
          status: 'sent',
          ...(result.providerMessageId ? { providerMessageId: result.providerMessageId } : {}),
        },
        decision: { kind: 'done' },
      };
    case 'permanent':
      return {
        outcome: { ...base, status: 'failed', reason: result.reason },
        decision: { kind: 'done' },
        cleanup: cleanupFor(delivery, result),
        ...(result.code ? { code: result.code } : {}),
        ...(delivery.address?.channel === 'push' ? { platform: delivery.address.platform } : {}),
      };
    case 'retryable': {
      const attemptsMade = delivery.attempts + 1;
      if (!hasAttemptsLeft(delivery.channel, attemptsMade)) {
        const reason = `attempts exhausted (${attemptsMade}): ${result.reason}`;
        return { outcome: { ...base, status: 'failed', reason }, decision: { kind: 'dead', reason } };
      }
      const delaySeconds = scaleDelay(services, retryDelaySeconds(attemptsMade, result.retryAfterSeconds));
      return {
        outcome: { ...base, status: 'queued', reason: `retry in ${delaySeconds}s: ${result.reason}` },
        decision: { kind: 'retry', delaySeconds },
      };
    }
  }
}

/** What a permanent answer proves about the contact. */
type Cleanup =
  | { userId: string; kind: 'remove-token'; target: string }
  | { userId: string; kind: 'disable-channel'; target: string }
  | { userId: string; kind: 'sms-opt-out' };

/** A permanent answer that proves an address dead cleans the contact, so it is not tried again. */
function cleanupFor(
  delivery: DeliveryToSend,
  result: Extract<SendResult, { kind: 'permanent' }>,
): Cleanup | undefined {
  const { address, userId } = delivery;
  if (!address || !userId) return undefined;
  if (result.optOut && address.channel === 'sms') return { userId, kind: 'sms-opt-out' };
  if (!result.invalidAddress) return undefined;
  switch (address.channel) {
    case 'push':
      return { userId, kind: 'remove-token', target: address.deviceToken };
    case 'chat':
      return { userId, kind: 'disable-channel', target: address.url ?? address.chatId ?? '' };
    case 'webhook':
      return { userId, kind: 'disable-channel', target: address.url };
    default:
      return undefined;
  }
}

/**
 * Turns a batch's clean-ups into statements: one rewrite of each affected contact's (encrypted)
 * token and channel lists, computed from the contact as loaded for this batch.
 */
async function cleanupStatements(
  services: Services,
  cleanups: readonly Cleanup[],
  contacts: ReadonlyMap<string, Contact>,
  now: number,
): Promise<D1PreparedStatement[]> {
  const statements: D1PreparedStatement[] = [];
  const byUser = new Map<string, Cleanup[]>();
  for (const c of cleanups) byUser.set(c.userId, [...(byUser.get(c.userId) ?? []), c]);
  for (const [userId, list] of byUser) {
    if (list.some((c) => c.kind === 'sms-opt-out'))
      statements.push(services.contacts.optOutOfSms(userId, now));
    const contact = contacts.get(userId);
    const dead = new Set(list.flatMap((c) => (c.kind === 'remove-token' ? [c.target] : [])));
    const disabled = new Set(list.flatMap((c) => (c.kind === 'disable-channel' ? [c.target] : [])));
    if (!contact || (dead.size === 0 && disabled.size === 0)) continue;
    statements.push(
      await services.contacts.cleanupStatement(
        contact,
        {
          deviceTokens: contact.deviceTokens.filter((t) => !dead.has(t.deviceToken)),
          externalChannels: contact.externalChannels.map((ch) =>
            disabled.has(ch.url ?? '') || disabled.has(ch.chatId ?? '') ? { ...ch, status: false } : ch,
          ),
        },
        now,
      ),
    );
  }
  return statements;
}

/**
 * APNs answers `BadDeviceToken` for every token when the app's environment or topic is wrong;
 * pruning then would wipe every user's tokens. When every APNs answer of a batch (two or more)
 * says so, it is treated as a configuration error: alert, keep the tokens.
 */
function spareMassPrune(channel: Channel, pending: Map<string, Pending>): boolean {
  if (channel !== 'push') return false;
  const apns = [...pending.values()].filter((p) => p.platform === 'apns' && p.outcome.attempted);
  if (apns.length < 2 || !apns.every((p) => p.code === 'BadDeviceToken')) return false;
  for (const p of apns) {
    p.cleanup = undefined;
    p.outcome.reason = `${p.outcome.reason ?? 'BadDeviceToken'} (every APNs token of the batch was refused: check APNS_ENVIRONMENT and APNS_TOPIC; tokens kept)`;
  }
  return true;
}

/** The data a template sees: the notification's data, plus the recipient and ids. */
function renderContext(
  delivery: DeliveryToSend,
  address: Address,
  contact: Contact | undefined,
): Record<string, unknown> {
  return {
    ...delivery.data,
    data: delivery.data,
    recipient: {
      userId: delivery.userId,
      email: address.channel === 'email' ? address.email : (contact?.email ?? null),
      phone: address.channel === 'sms' ? address.phone : (contact?.phone ?? null),
      locale: contact?.locale ?? null,
      timezone: contact?.timezone ?? null,
    },
    notification: { id: delivery.notificationId, type: delivery.type, priority: delivery.priority },
    delivery: { id: delivery.id, channel: delivery.channel },
  };
}
