import type { Address } from '../../domain/address';
import type { Channel, Priority } from '../../domain/channels';
import type { Contact, InlineRecipient } from '../../domain/contact';
import type { Notification } from '../../domain/delivery';
import { type PlannedDelivery, planDeliveries, type ResolvedRecipient } from '../../domain/delivery-plan';
import { AppError, bucketMoving } from '../../domain/errors';
import { type EscalationStep, escalationOf, planEscalation, scheduledReason } from '../../domain/escalation';
import { MAX_QUEUE_DELAY_SECONDS } from '../../domain/retry';
import { bucketOfKey } from '../../domain/shards';
import type { DeliveryStatus } from '../../domain/status';
import { canonicalJson, sha256Hex } from '../../lib/crypto';
import { idAfter, newId } from '../../lib/ids';
import { log } from '../../lib/log';
import { sendToQueue } from '../../queue/producer';
import type { NewDelivery, NewNotification } from '../../storage/deliveries-repo';
import type { Services } from '../container';
import { MISSING_ROW_GRACE_MS } from '../delivery/load';
import { recipientKey } from '../delivery/recipient-gate';
import {
  type AddressValue,
  addressValue,
  suppressedAddresses,
  suppressionKey,
  suppressionKeyOf,
} from '../recipients/suppressions';

/** A validated notification request (the API's schema output). */
export interface NotificationInput {
  id?: string;
  type: string;
  source?: string;
  recipients: (string | InlineRecipient)[];
  channels?: Channel[];
  data?: Record<string, unknown>;
  priority?: Priority;
  sendAt?: string;
  dedupeKey?: string;
  cancelKey?: string;
}

export interface AcceptedDelivery {
  id: string;
  userId: string | null;
  channel: Channel;
  status: DeliveryStatus;
  reason?: string;
}

export interface Accepted {
  id: string;
  /** True when this id was accepted before and nothing new was written or enqueued. */
  replayed: boolean;
  deliveries: AcceptedDelivery[];
}

interface Prepared {
  notification: NewNotification;
  deliveries: NewDelivery[];
}

/**
 * Accepts notifications: enqueues the deliveries per channel, then writes their rows, already
 * `queued` (one row written per delivery, no second write to record the enqueue). The answer is
 * given only after D1 holds the rows. A failed queue send leaves its deliveries `created` for the
 * sweeper; a message whose rows never got written (D1 failed after the queue send) finds no
 * delivery and is dropped by the consumer after a grace period, while the producer got an error.
 */
export async function acceptNotifications(
  services: Services,
  inputs: readonly NotificationInput[],
  raced = false,
): Promise<Accepted[]> {
  const now = services.now();
  const results: (Accepted | Prepared)[] = [];
  const byId = new Map<string, { hash: string; result: Accepted | Prepared }>();
  // One query for every producer-given id and one for every recipient, not one per notification.
  const given = inputs.map((i) => i.id).filter((id): id is string => id !== undefined);
  const known = new Map(
    given.length > 0 ? (await services.deliveries.getNotifications(given)).map((n) => [n.id, n]) : [],
  );
  // A producer id whose rows never came (the write failed after its key row) is free again.
  const unknown = given.filter((id) => !known.has(id));
  if (unknown.length > 0) await services.deliveries.releaseKeys(unknown, now - MISSING_ROW_GRACE_MS);
  const contacts = await services.contacts.getMany(inputs.flatMap((i) => recipientUserIds(i.recipients)));
  for (const [index, input] of inputs.entries()) {
    const requestHash = await sha256Hex(canonicalJson({ ...input, id: undefined }));
    if (input.id === undefined) {
      // A generated id is new: no replay, no earlier twin in this request.
      const result = await prepare(services, input, null, requestHash, contacts, now);
      byId.set(result.notification.id, { hash: requestHash, result });
      results.push(result);
      continue;
    }
    const id = input.id;
    const earlier = byId.get(id);
    if (earlier) {
      if (earlier.hash !== requestHash) {
        throw new AppError(
          409,
          'idempotency_conflict',
          `notifications[${index}].id repeats an id with a different body`,
          [{ field: `notifications[${index}].id`, message: 'duplicate id with a different body' }],
        );
      }
      results.push(earlier.result);
      continue;
    }
    const result =
      (await replay(services, known.get(id), requestHash)) ??
      (await prepare(services, input, id, requestHash, contacts, now));
    byId.set(id, { hash: requestHash, result });
    results.push(result);
  }

  const fresh = [...byId.values()].map((e) => e.result).filter((r): r is Prepared => 'notification' in r);
  if (fresh.length > 0 && !(await commitFresh(services, fresh, now, raced))) {
    // A concurrent request with one of these ids won the race: nothing of this one was written.
    // Answer the whole request again, which now finds that id (a replay, or a 409 before any write).
    if (raced) throw new AppError(409, 'idempotency_conflict', 'a concurrent request used one of these ids');
    return acceptNotifications(services, inputs, true);
  }
  return results.map((r) => ('replayed' in r ? r : toAccepted(r)));
}

/**
 * Enqueues the new deliveries, then writes every row in one atomic commit. False when a unique key
 * collided (a concurrent request with the same id committed first): then nothing was written, and
 * the ids already handed to the queues find no row and are dropped after the grace period, which
 * starts at the enqueue, not at the request.
 */
async function commitFresh(
  services: Services,
  fresh: readonly Prepared[],
  now: number,
  raced: boolean,
): Promise<boolean> {
  await applySuppressions(services, fresh);
  // A later escalation step waits `scheduled`: its timer is in its recipient's object (set below).
  for (const p of fresh)
    for (const d of p.deliveries)
      if (d.status === 'created' && d.escalation && d.sendAtMs !== undefined) d.status = 'scheduled';
  const queued = new Set(await enqueue(services, fresh, services.now()));
  for (const p of fresh) {
    for (const d of p.deliveries) if (queued.has(d.id)) d.status = 'queued';
  }
  try {
    const statements = await Promise.all(
      fresh.map((p) => services.deliveries.insertStatements(p.notification, p.deliveries, now)),
    );
    // Each database's counts go first in its batch: they count the rows not there yet.
    await services.commit([...services.deliveries.newRowsCountStatements(fresh), ...statements.flat()]);
    await scheduleLaterSteps(services, fresh);
    return true;
  } catch (error) {
    // The home database's key rows go first: a race fails there, before any part is written.
    if (String(error).includes('UNIQUE')) {
      log('warn', 'ingest.id_race', { count: fresh.length, again: raced });
      return false;
    }
    await discardParts(services, fresh);
    throw error;
  }
}

/**
 * A commit is atomic within a database, not across them: when one database failed after others
 * took their parts, those parts are removed again, so the producer's 5xx means nothing was
 * accepted (their queue messages find no row and are dropped, as after any failed write) and a
 * retry is a fresh send, never a replay of half a notification.
 */
async function discardParts(services: Services, fresh: readonly Prepared[]): Promise<void> {
  const written = fresh.map((p) => ({
    notificationId: p.notification.id,
    producerKey: p.notification.producerKey,
    deliveryIds: p.deliveries.map((d) => d.id),
  }));
  if (!(await services.deliveries.discard(written)))
    log('error', 'ingest.discard_failed', { notifications: fresh.length });
}

/**
 * Addresses on the suppression list (hard bounces, complaints, unsubscribes of recipients without
 * a user id) are planned `suppressed`: one query for the whole request.
 */
async function applySuppressions(services: Services, prepared: readonly Prepared[]): Promise<void> {
  const candidates = prepared.flatMap((p) => p.deliveries).filter((d) => d.status === 'created' && d.address);
  const values = candidates
    .map((d) => (d.address ? addressValue(d.address) : null))
    .filter((v): v is AddressValue => v !== null);
  if (values.length === 0) return;
  const suppressed = await suppressedAddresses(services, values);
  if (suppressed.size === 0) return;
  for (const d of candidates) {
    const value = d.address ? addressValue(d.address) : null;
    if (value && suppressed.has(suppressionKey(value.channel, value.value))) {
      d.status = 'suppressed';
      d.reason = 'address is on the suppression list (bounced, complained or unsubscribed)';
    }
  }
}

function toAccepted(p: Prepared): Accepted {
  return {
    id: p.notification.id,
    replayed: false,
    deliveries: p.deliveries.map((d) => ({
      id: d.id,
      userId: d.userId,
      channel: d.channel,
      status: d.status,
      ...(d.reason ? { reason: d.reason } : {}),
    })),
  };
}

async function replay(
  services: Services,
  existing: Notification | undefined,
  requestHash: string,
): Promise<Accepted | null> {
  if (!existing) return null;
  const { id } = existing;
  if (existing.requestHash !== requestHash) {
    throw new AppError(
      409,
      'idempotency_conflict',
      `notification ${id} was already accepted with a different body`,
      [{ field: 'id', message: 'this id was used with a different body' }],
    );
  }
  const deliveries = await services.deliveries.getDeliveries(existing.deliveryIds);
  return {
    id,
    replayed: true,
    deliveries: deliveries.map((d) => ({
      id: d.id,
      userId: d.userId,
      channel: d.channel,
      status: d.status,
      ...(d.reason ? { reason: d.reason } : {}),
    })),
  };
}

async function prepare(
  services: Services,
  input: NotificationInput,
  givenId: string | null,
  requestHash: string,
  contacts: ReadonlyMap<string, Contact>,
  now: number,
): Promise<Prepared> {
  const templated = await services.templates.channelsOf(input.type);
  if (templated.length === 0) {
    throw new AppError(
      422,
      'unknown_type',
      `type: no templates exist for notification type "${input.type}"`,
      [{ field: 'type', message: 'no templates for this type' }],
    );
  }
  const config = await services.templates.typeConfig(input.type);
  const explicit = input.channels !== undefined;
  const wanted = input.channels ?? config.channels;
  const channels = wanted ? templated.filter((c) => wanted.includes(c)) : templated;
  if (channels.length === 0) {
    throw new AppError(
      422,
      'no_channel',
      `channels: type "${input.type}" has no template for ${input.channels?.join(', ')}`,
      [{ field: 'channels', message: `templated channels are ${templated.join(', ')}` }],
    );
  }

  const recipients = resolveRecipients(input.recipients, contacts);
  const escalation = explicit ? null : escalationOf(config, templated);
  const plans: (PlannedDelivery & { sendAtMs?: number; escalation?: string })[] = escalation
    ? recipients.flatMap((recipient) =>
        planEscalation(recipient, escalation, now).map(({ step, ...d }) => ({
          ...d,
          escalation: JSON.stringify({ step, unless: escalation[step]?.unless ?? [] }),
          ...(d.sendAtMs !== undefined
            ? { reason: scheduledReason(escalation[step] as EscalationStep, d.sendAtMs) }
            : {}),
        })),
      )
    : recipients.flatMap((recipient) => planDeliveries(recipient, channels, explicit));
  const ids = await placedIds(services, plans, now);
  // The first part's head names a generated notification (under `ntf_`): no key row to find it.
  const id = givenId ?? `ntf_${(ids[0] ?? newId('dlv', now)).slice(4)}`;
  const deliveries: NewDelivery[] = plans.map((planned, index) => ({
    id: ids[index] ?? newId('dlv', now),
    notificationId: id,
    ...planned,
  }));
  return {
    notification: {
      id,
      type: input.type,
      source: input.source ?? null,
      priority: input.priority ?? config.priority ?? 'normal',
      data: input.data ?? {},
      channels: input.channels ?? null,
      sendAtMs: input.sendAt ? Date.parse(input.sendAt) : null,
      dedupeKey: input.dedupeKey ?? null,
      cancelKey: input.cancelKey ?? null,
      requestHash,
      producerKey: input.id !== undefined,
    },
    deliveries,
  };
}

/**
 * The delivery ids of a notification's plans. Each delivery lives in its recipient's bucket (the
 * user id's, or for an inline recipient without one, its address's blind index), and the id names
 * that bucket; the deliveries of one bucket are one sequence from their own head, so each
 * database holds its part of the notification as one primary-key range, the head carrying the data.
 */
async function placedIds(
  services: Services,
  plans: readonly PlannedDelivery[],
  now: number,
): Promise<string[]> {
  const buckets = await Promise.all(plans.map((plan) => bucketOfPlan(services, plan)));
  // Refused before anything is enqueued or written: the bucket's rows are being copied.
  if (buckets.some((bucket) => services.router.isMoving(bucket))) throw bucketMoving();
  const heads = new Map<number, { head: string; next: number }>();
  return buckets.map((bucket) => {
    const part = heads.get(bucket) ?? { head: newId('dlv', now, bucket), next: 0 };
    heads.set(bucket, part);
    part.next += 1;
    return idAfter(part.head, part.next - 1);
  });
}

async function bucketOfPlan(services: Services, plan: PlannedDelivery): Promise<number> {
  if (plan.userId) return bucketOfKey(plan.userId);
  const value = plan.address ? addressValue(plan.address) : null;
  if (!value) return 0;
  return bucketOfKey((await suppressionKeyOf(services, value)).addressHash);
}

/** The user ids a notification names (plain ids and inline recipients with one). */
function recipientUserIds(recipients: NotificationInput['recipients']): string[] {
  return recipients.map((r) => (typeof r === 'string' ? r : r.userId)).filter((u): u is string => !!u);
}

/** Merges inline address fields over the contact's (contacts loaded once per request). */
function resolveRecipients(
  recipients: NotificationInput['recipients'],
  contacts: ReadonlyMap<string, Contact>,
): ResolvedRecipient[] {
  return recipients.map((r) => {
    const inline: InlineRecipient = typeof r === 'string' ? { userId: r } : r;
    const contact: Contact | undefined = inline.userId ? contacts.get(inline.userId) : undefined;
    return {
      userId: inline.userId ?? null,
      known: contact !== undefined,
      email: inline.email ?? contact?.email ?? null,
      phone: inline.phone ?? contact?.phone ?? null,
      deviceTokens: inline.deviceTokens ?? contact?.deviceTokens ?? [],
      externalChannels: inline.externalChannels ?? contact?.externalChannels ?? [],
      smsOptedOut:
        contact?.smsOptedOut === true && (inline.phone === undefined || inline.phone === contact.phone),
    };
  });
}

/**
 * Sends the `created` deliveries to their channel queues, several ids per message, and returns
 * the ids the queues took. A send time becomes `delaySeconds` (at most the queue's limit).
 */
async function enqueue(services: Services, prepared: readonly Prepared[], now: number): Promise<string[]> {
  const byChannelAndDelay = new Map<Channel, Map<number, string[]>>();
  for (const { notification, deliveries } of prepared) {
    for (const d of deliveries) {
      if (d.status !== 'created') continue;
      // A send time beyond the queue's delay limit hops: the consumer re-enqueues it until it is due.
      const sendAtMs = d.sendAtMs ?? notification.sendAtMs;
      const delay = sendAtMs
        ? Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(0, Math.ceil((sendAtMs - now) / 1000)))
        : 0;
      const byDelay = byChannelAndDelay.get(d.channel) ?? new Map<number, string[]>();
      byChannelAndDelay.set(d.channel, byDelay);
      const ids = byDelay.get(delay) ?? [];
      byDelay.set(delay, ids);
      ids.push(d.id);
    }
  }
  const results = await Promise.all(
    [...byChannelAndDelay].map(([channel, byDelay]) =>
      sendToQueue(
        services.env,
        channel,
        [...byDelay].map(([delaySeconds, deliveryIds]) => ({
          deliveryIds,
          attempt: 0,
          delaySeconds,
          at: now,
        })),
        'ingest',
      ),
    ),
  );
  return results.flatMap((r) => r.sent);
}

/**
 * Hands each recipient's later escalation steps to their Recipient object, whose alarm sends them
 * when due. Where the object cannot be reached, the steps go to their queues with the delay
 * instead; a step neither took waits `scheduled` until the reaper finds it due.
 */
async function scheduleLaterSteps(services: Services, fresh: readonly Prepared[]): Promise<void> {
  const steps = fresh.flatMap((p) =>
    p.deliveries.filter((d) => d.status === 'scheduled' && d.sendAtMs !== undefined && d.address),
  );
  if (steps.length === 0) return;
  const byRecipient = new Map<string, NewDelivery[]>();
  for (const d of steps) {
    const key = await recipientKey(d.userId, d.address as Address);
    byRecipient.set(key, [...(byRecipient.get(key) ?? []), d]);
  }
  await Promise.all(
    [...byRecipient].map(async ([key, list]) => {
      try {
        await services.env.RECIPIENT.get(services.env.RECIPIENT.idFromName(key)).schedule(
          list.map((d) => ({ deliveryId: d.id, channel: d.channel, dueAtMs: d.sendAtMs as number })),
        );
      } catch (error) {
        log('warn', 'escalation.schedule_failed', { count: list.length, error: String(error) });
        await delayedFallback(services, list);
      }
    }),
  );
}

async function delayedFallback(services: Services, steps: readonly NewDelivery[]): Promise<void> {
  const now = services.now();
  for (const d of steps) {
    const delaySeconds = Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(((d.sendAtMs as number) - now) / 1000));
    await sendToQueue(
      services.env,
      d.channel,
      [{ deliveryIds: [d.id], attempt: 0, delaySeconds, at: now }],
      'ingest',
    );
  }
}
