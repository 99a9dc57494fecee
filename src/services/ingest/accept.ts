import type { Channel, Priority } from '../../domain/channels';
import type { Contact, InlineRecipient } from '../../domain/contact';
import type { Notification } from '../../domain/delivery';
import type { PlannedDelivery } from '../../domain/delivery-plan';
import { AppError, bucketMoving } from '../../domain/errors';
import { bucketOfKey } from '../../domain/shards';
import type { DeliveryStatus } from '../../domain/status';
import type { TopicRecipient, TopicSend } from '../../domain/topics';
import { canonicalJson, sha256Hex } from '../../lib/crypto';
import { idAfter, newId } from '../../lib/ids';
import { log } from '../../lib/log';
import type { NewDelivery, NewNotification } from '../../storage/deliveries-repo';
import type { Services } from '../container';
import { MISSING_ROW_GRACE_MS } from '../delivery/load';
import { addressValue, suppressionKeyOf } from '../recipients/suppressions';
import { handOver, scheduleLaterSteps } from './hand-over';
import { directRecipients, planRecipients, recipientUserIds, resolveRecipients, routingOf } from './plan';
import { startExpansions, topicSendOf, topicSendStatements, topicTargetsOf } from './topic-expansion';

/** A validated notification request (the API's schema output). */
export interface NotificationInput {
  id?: string;
  type: string;
  source?: string;
  /** User ids, inline recipients, and topics (`{ topic, exclude? }`: every subscriber but these). */
  recipients: (string | InlineRecipient | TopicRecipient)[];
  /** The user who caused it: never reached through a topic (one's own comment notifies others). */
  actor?: string;
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
  /** The topics whose subscribers are being reached (through the queues, after the answer). */
  topics?: string[];
  /** True when this id was accepted before and nothing new was written or enqueued. */
  replayed: boolean;
  deliveries: AcceptedDelivery[];
}

interface Prepared {
  notification: NewNotification;
  deliveries: NewDelivery[];
  /** The send to topics, expanded after the commit through the topics queue. */
  topicSend?: TopicSend;
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
  const contacts = await services.contacts.getMany(
    inputs.flatMap((i) => recipientUserIds(directRecipients(i.recipients))),
  );
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
  await handOver(services, fresh);
  try {
    const statements = await Promise.all(fresh.map((p) => writeStatements(services, p, now)));
    // Each database's counts go first in its batch: they count the rows not there yet.
    await services.commit([...services.deliveries.newRowsCountStatements(fresh), ...statements.flat()]);
  } catch (error) {
    // The home database's key rows go first: a race fails there, before any part is written.
    if (String(error).includes('UNIQUE')) {
      log('warn', 'ingest.id_race', { count: fresh.length, again: raced });
      return false;
    }
    await discardParts(services, fresh);
    throw error;
  }
  try {
    // After the commit, so no subscriber is reached for a notification the producer got a 5xx for.
    await startExpansions(
      services,
      fresh.flatMap((p) => (p.topicSend ? [p.topicSend] : [])),
    );
  } catch (error) {
    await discardParts(services, fresh);
    throw error;
  }
  await scheduleLaterSteps(services, fresh);
  return true;
}

/** A notification's rows, and the record of its send to topics when it has one. */
async function writeStatements(services: Services, p: Prepared, now: number): Promise<D1PreparedStatement[]> {
  const rows = await services.deliveries.insertStatements(p.notification, p.deliveries, now);
  if (!p.topicSend) return rows;
  return [
    ...rows,
    ...(await topicSendStatements(services, p.topicSend, p.notification, p.deliveries.length > 0)),
  ];
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
  const sends = fresh.flatMap((p) => (p.topicSend ? [p.topicSend.notificationId] : []));
  const [discarded] = await Promise.all([
    services.deliveries.discard(written),
    services.topicSends.delete(sends).then(
      () => true,
      () => false,
    ),
  ]);
  if (!discarded) log('error', 'ingest.discard_failed', { notifications: fresh.length });
}

function toAccepted(p: Prepared): Accepted {
  return {
    id: p.notification.id,
    replayed: false,
    ...(p.topicSend ? { topics: p.topicSend.topics.map((t) => t.topic) } : {}),
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
  const [all, send] = await Promise.all([
    services.deliveries.getDeliveries(existing.deliveryIds),
    services.topicSends.get(id),
  ]);
  // A send to topics answers as it did: its topics, and only the deliveries it named directly
  // (a subscriber's user id is never one the send skips; an inline recipient may have none).
  const skip = new Set(send?.skip);
  const deliveries = send ? all.filter((d) => d.userId === null || skip.has(d.userId)) : all;
  return {
    id,
    replayed: true,
    ...(send ? { topics: send.topics.map((t) => t.topic) } : {}),
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
  const routing = await routingOf(services, input.type, input.channels);
  const topics = await topicTargetsOf(services, input.recipients);
  const direct = directRecipients(input.recipients);
  const plans = planRecipients(resolveRecipients(direct, contacts), routing, now);
  const ids = await placedIds(services, plans, now);
  // The first part's head names a generated notification (under `ntf_`): no key row to find it.
  const id = givenId ?? `ntf_${(ids[0] ?? newId('dlv', now)).slice(4)}`;
  const deliveries: NewDelivery[] = plans.map((planned, index) => ({
    id: ids[index] ?? newId('dlv', now),
    notificationId: id,
    ...planned,
  }));
  const notification: NewNotification = {
    id,
    type: input.type,
    source: input.source ?? null,
    priority: input.priority ?? routing.config.priority ?? 'normal',
    data: input.data ?? {},
    channels: input.channels ?? null,
    sendAtMs: input.sendAt ? Date.parse(input.sendAt) : null,
    dedupeKey: input.dedupeKey ?? null,
    cancelKey: input.cancelKey ?? null,
    requestHash,
    producerKey: input.id !== undefined,
  };
  if (topics.length === 0) return { notification, deliveries };
  // Reached through a topic: nobody named directly (they have their deliveries) and not the actor.
  const skip = [...new Set([...recipientUserIds(direct), ...(input.actor ? [input.actor] : [])])];
  return { notification, deliveries, topicSend: topicSendOf(services, notification, topics, skip, now) };
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
