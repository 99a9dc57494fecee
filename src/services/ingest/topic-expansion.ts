import { AppError } from '../../domain/errors';
import { bucketOfKey } from '../../domain/shards';
import {
  EXPANSION_PAGE,
  isTopicRecipient,
  mergeTopicPages,
  type TopicRecipient,
  type TopicSend,
  type TopicTarget,
} from '../../domain/topics';
import { sha256Bytes } from '../../lib/crypto';
import { derivedId } from '../../lib/ids';
import { log } from '../../lib/log';
import type { TopicPageMessage } from '../../queue/messages';
import { sendTopicPages } from '../../queue/producer';
import type { NewDelivery, NewNotification } from '../../storage/deliveries-repo';
import type { Shard } from '../../storage/shard-router';
import type { Services } from '../container';
import { MISSING_ROW_GRACE_MS } from '../delivery/load';
import { handOver, scheduleLaterSteps } from './hand-over';
import { type DirectRecipient, type Plan, planRecipients, resolveRecipients, routingOf } from './plan';

/**
 * A notification's topic entries, each topic once (its exclusions merged): 422 naming the entry
 * when a topic does not exist.
 */
export async function topicTargetsOf(
  services: Services,
  recipients: readonly (DirectRecipient | TopicRecipient)[],
): Promise<TopicTarget[]> {
  const entries = recipients.flatMap((r, index) => (isTopicRecipient(r) ? [{ entry: r, index }] : []));
  if (entries.length === 0) return [];
  const known = await services.topics.existing(entries.map((e) => e.entry.topic));
  const missing = entries.filter((e) => !known.has(e.entry.topic));
  if (missing.length > 0) {
    throw new AppError(
      422,
      'unknown_topic',
      `recipients: no topic named ${missing.map((m) => `"${m.entry.topic}"`).join(', ')}`,
      missing.map((m) => ({ field: `recipients[${m.index}].topic`, message: 'no such topic' })),
    );
  }
  const byTopic = new Map<string, Set<string>>();
  for (const { entry } of entries) {
    const excluded = byTopic.get(entry.topic) ?? new Set<string>();
    for (const userId of entry.exclude ?? []) excluded.add(userId);
    byTopic.set(entry.topic, excluded);
  }
  return [...byTopic].map(([topic, excluded]) => ({ topic, exclude: [...excluded] }));
}

/** The record of a send to topics, under the current database layout. */
export function topicSendOf(
  services: Services,
  notification: NewNotification,
  topics: TopicTarget[],
  skip: string[],
  now: number,
): TopicSend {
  const { id, type, source, priority, data, channels, sendAtMs, dedupeKey, cancelKey, requestHash } =
    notification;
  return {
    notificationId: id,
    createdAtMs: now,
    requestHash,
    type,
    source,
    priority,
    data,
    channels,
    sendAtMs,
    dedupeKey,
    cancelKey,
    topics,
    skip,
    layout: services.router.layout,
  };
}

/**
 * The statements recording a send to topics (in the home database, in the notification's commit):
 * the send, and for a producer's id with no delivery of its own the key row that finds it.
 */
export async function topicSendStatements(
  services: Services,
  send: TopicSend,
  notification: NewNotification,
  hasOwnHead: boolean,
): Promise<D1PreparedStatement[]> {
  const key =
    notification.producerKey && !hasOwnHead
      ? [services.deliveries.keyStatementWithoutHead(notification.id, send.createdAtMs)]
      : [];
  return [...key, await services.topicSends.insertStatement(send)];
}

/** Starts each send's expansion: one page message per database serving buckets. Throws when refused. */
export async function startExpansions(services: Services, sends: readonly TopicSend[]): Promise<void> {
  if (sends.length === 0) return;
  await sendTopicPages(
    services.env,
    sends.flatMap((send) =>
      services.router.shards.map((shard) => ({
        v: 1 as const,
        notificationId: send.notificationId,
        database: shard.name,
        after: null,
        layout: send.layout,
        at: send.createdAtMs,
      })),
    ),
  );
}

/**
 * One page of a send's expansion in one database: the next subscribers of its topics there (each
 * once, less the excluded, the actor and those named directly), planned like any recipient and
 * written, then the next page handed to the queue. Every row's id derives from the notification,
 * user, channel and address, so a page run again (a retry, a restart after a bucket moved) writes
 * and enqueues only what is missing. Throws to have the page retried.
 */
export async function expandPage(services: Services, message: TopicPageMessage): Promise<void> {
  const send = await services.topicSends.get(message.notificationId);
  if (!send) {
    // Its record is written after the messages of a request that then failed: wait, then let go.
    if (services.now() - message.at < MISSING_ROW_GRACE_MS) throw new Error('topic send not written yet');
    log('warn', 'topics.send_missing', { notificationId: message.notificationId });
    return;
  }
  if (send.canceledAtMs || send.layout !== message.layout) return;
  const layout = services.router.layout;
  if (layout !== send.layout) {
    // A bucket moved: its subscribers may now be in a database this walk has passed. Start again
    // under the new layout (once: the other walks stop); rows already written are not written again.
    if (await services.topicSends.relayout(send.notificationId, send.layout, layout))
      await startExpansions(services, [{ ...send, layout }]);
    log('info', 'topics.expansion_restarted', { notificationId: send.notificationId, layout });
    return;
  }
  const shard = services.router.database(message.database);
  if (!shard) {
    log('error', 'topics.database_unknown', {
      notificationId: send.notificationId,
      database: message.database,
    });
    return;
  }
  const { userIds, next } = await nextPage(services, send, shard, message.after);
  if (userIds.length > 0) await deliverTo(services, send, userIds);
  if (next !== null) await sendTopicPages(services.env, [{ ...message, after: next }]);
  log('info', 'topics.page_expanded', {
    notificationId: send.notificationId,
    database: shard.name,
    recipients: userIds.length,
    more: next !== null,
  });
}

/** The users of the next page in one database (only those whose bucket it serves). */
async function nextPage(
  services: Services,
  send: TopicSend,
  shard: Shard,
  after: string | null,
): Promise<{ userIds: string[]; next: string | null }> {
  const pages = await Promise.all(
    send.topics.map(async (t) =>
      (await services.topicSubscriptions.pageIn(shard, t.topic, after ?? undefined, EXPANSION_PAGE)).map(
        (s) => s.userId,
      ),
    ),
  );
  const { userIds, next } = mergeTopicPages(send.topics, pages, new Set(send.skip), EXPANSION_PAGE);
  return { userIds: userIds.filter((u) => services.router.forUser(u) === shard), next };
}

/** Plans, hands over and writes the deliveries of these subscribers (what is not written yet). */
async function deliverTo(services: Services, send: TopicSend, userIds: readonly string[]): Promise<void> {
  let routing: Awaited<ReturnType<typeof routingOf>>;
  try {
    routing = await routingOf(services, send.type, send.channels ?? undefined);
  } catch (error) {
    // The type's templates were removed since the send was accepted: nothing can be rendered.
    if (!(error instanceof AppError)) throw error;
    log('error', 'topics.type_gone', { notificationId: send.notificationId, type: send.type });
    return;
  }
  const contacts = await services.contacts.getMany(userIds);
  const plans = planRecipients(resolveRecipients(userIds, contacts), routing, send.createdAtMs);
  const ids = await Promise.all(plans.map((plan) => topicDeliveryId(send, plan)));
  const written = await services.deliveries.existingIds(ids);
  const deliveries: NewDelivery[] = plans.flatMap((plan, i) => {
    const id = ids[i] as string;
    return written.has(id) ? [] : [{ id, notificationId: send.notificationId, ...plan }];
  });
  if (deliveries.length === 0) return;
  const notification: NewNotification = { ...send, id: send.notificationId, producerKey: false };
  await handOver(services, [{ notification, deliveries }]);
  // Written as of the acceptance, like the rows written then: the notification lists once, in its place.
  // Counted in the same commit as the rows (a row already there is not counted again); the send
  // was counted as accepted when it was.
  await services.commit([
    ...services.deliveries.newRowsCountStatements([{ notification, deliveries, accepted: false }]),
    ...(await services.deliveries.insertOwnHeadStatements(notification, deliveries, send.createdAtMs)),
  ]);
  // A cancellation that came while this page was planned may have missed its rows: call them off.
  if (await services.topicSends.isCanceled(send.notificationId)) {
    await services.deliveries.cancel(
      deliveries.map((d) => d.id),
      services.now(),
    );
    return;
  }
  await scheduleLaterSteps(services, [{ notification, deliveries }]);
}

/**
 * A topic delivery's id: in the send's millisecond (so the notification's rows are found together)
 * and its user's bucket, the rest derived from what it delivers, so planning it twice names one row.
 */
async function topicDeliveryId(send: TopicSend, plan: Plan): Promise<string> {
  const userId = plan.userId ?? '';
  const seed = await sha256Bytes(
    [send.notificationId, userId, plan.channel, JSON.stringify(plan.address), plan.escalation ?? ''].join(
      '\n',
    ),
  );
  return derivedId('dlv', send.createdAtMs, bucketOfKey(userId), seed);
}
