import type { Channel } from '../domain/channels';
import {
  type Delivery,
  type DeliveryToSend,
  MAX_DELIVERIES_LISTED,
  type Notification,
} from '../domain/delivery';
import { ACCEPTED, type CountIncrement, deliveryCount } from '../domain/metric-counters';
import type { DeliveryStatus } from '../domain/status';
import type { TopicSend } from '../domain/topics';
import type { FieldCipher } from '../lib/field-crypto';
import { bucketOfId, idTimeMs } from '../lib/ids';
import { BucketRows } from './bucket-rows';
import {
  DeliveriesRepo,
  type ErasureRecord,
  type EscalationRow,
  type ListFilters,
  type Located,
  type NewDelivery,
  type NewNotification,
  type Outcome,
} from './deliveries-repo';
import { PerShard } from './per-shard';
import type { ShardRouter } from './shard-router';
import { TopicSendsRepo } from './topics-repo';

/**
 * The request hash a part's head carries when it is not the notification's first part: still a
 * head (its rows' data is there), but not counted as a notification of its own.
 */
const PART_MARK = 'part:';

/** A notification's parts in several databases, as one: the first part's fields, every delivery. */
function mergeParts(parts: readonly Notification[]): Notification | undefined {
  const found = parts.find((p) => !p.requestHash.startsWith(PART_MARK)) ?? parts[0];
  if (!found) return undefined;
  const { plan, ...primary } = found;
  const first = { ...primary, requestHash: primary.requestHash.replace(PART_MARK, '') };
  // A bucket being moved has its rows in two databases for a while: its ids count once.
  const ids = [...new Set(parts.flatMap((p) => p.deliveryIds))].sort();
  if (plan) {
    const rank = new Map(plan.map((id, i) => [id, i]));
    ids.sort((a, b) => (rank.get(a) ?? plan.length) - (rank.get(b) ?? plan.length));
  }
  // Each database listed its first ids at most: past the shortest list, another's ids may be missing.
  const truncated = parts.some((p) => p.deliveriesTruncated) || ids.length > MAX_DELIVERIES_LISTED;
  const listed = truncated ? ids.sort().slice(0, MAX_DELIVERIES_LISTED) : ids;
  const more = truncated ? { deliveriesTruncated: true } : {};
  if (parts.length === 1) return { ...first, deliveryIds: listed, ...more };
  const createdAt = parts.map((p) => p.createdAt).sort()[0] ?? first.createdAt;
  return { ...first, deliveryIds: listed, createdAt, ...more };
}

/** A topic send as a notification with no delivery yet. */
function notificationOfSend(send: TopicSend): Notification {
  return {
    id: send.notificationId,
    type: send.type,
    source: send.source,
    priority: send.priority,
    data: send.data,
    channels: send.channels,
    sendAt: send.sendAtMs === null ? null : new Date(send.sendAtMs).toISOString(),
    dedupeKey: send.dedupeKey,
    cancelKey: send.cancelKey,
    requestHash: send.requestHash,
    deliveryIds: [],
    createdAt: new Date(send.createdAtMs).toISOString(),
  };
}

/** Several lists of results, by key, merged. */
function byKey<T>(lists: readonly T[][], keyOf: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of lists.flat()) out.set(keyOf(item), [...(out.get(keyOf(item)) ?? []), item]);
  return out;
}

/** What a delivery's provider answer, committed on its own, found to count (added later). */
export interface AnsweredCounts {
  deliveryId: string;
  counts: readonly CountIncrement[];
}

/**
 * Deliveries over every database: a call about ids goes to the databases their buckets name, a
 * call about a user to every database (rows written before a bucket moved may still be elsewhere,
 * and these calls are rare), and a listing fans out and merges. Producer ids live in the home
 * database. Each database's own queries are `DeliveriesRepo`'s.
 */
export class ShardedDeliveries extends PerShard<DeliveriesRepo> {
  private readonly topicSends: TopicSendsRepo;

  constructor(router: ShardRouter, cipher: () => Promise<FieldCipher>) {
    super(router, (db) => new DeliveriesRepo(db, cipher));
    this.topicSends = new TopicSendsRepo(router.home.db, cipher);
  }

  private get home(): DeliveriesRepo {
    return this.on(this.router.home);
  }

  acceptedAt(id: string): Promise<number | null> {
    return this.home.acceptedAt(id);
  }

  async getNotification(id: string): Promise<Notification | null> {
    const [notification] = await this.getNotifications([id]);
    return notification ?? null;
  }

  /**
   * Notifications by their public id, whole: located through the home database (producer ids) or
   * their id, then each database searched in the notification's millisecond for its parts.
   */
  async getNotifications(ids: readonly string[]): Promise<Notification[]> {
    const located: Located[] = (await this.home.locate(ids)).map((l) => ({
      id: l.id,
      head: null,
      ms: (l.head ? idTimeMs('dlv', l.head) : null) ?? l.ms,
    }));
    if (located.length === 0) return [];
    const parts = byKey(
      await Promise.all(this.all.map((repo) => repo.notificationsAt(located))),
      (n) => n.id,
    );
    const merged = located.map((l) => ({ id: l.id, found: mergeParts(parts.get(l.id) ?? []) }));
    // A notification sent to topics only answers from its send record until a subscriber's row exists.
    const pending = merged.filter((m) => m.found === undefined).map((m) => m.id);
    const sends = new Map(
      (await this.topicSends.getMany(pending)).map((send) => [send.notificationId, send]),
    );
    return merged.flatMap((m) => {
      if (m.found) return [m.found];
      const send = sends.get(m.id);
      return send ? [notificationOfSend(send)] : [];
    });
  }

  /** The ids among these that have a row (in the database their bucket names). */
  async existingIds(ids: readonly string[]): Promise<Set<string>> {
    const sets = await Promise.all(this.grouped(ids, (repo, group) => repo.existingIds(group)));
    return new Set(sets.flatMap((set) => [...set]));
  }

  /**
   * Statements writing deliveries that are each their own head (a topic's subscribers: every row
   * carries the notification, so it reads, moves and is archived alone), and that may have been
   * written before (a page expanded again): a row already there is left as it is.
   */
  async insertOwnHeadStatements(
    notification: NewNotification,
    deliveries: readonly NewDelivery[],
    nowMs: number,
  ): Promise<D1PreparedStatement[]> {
    const part = {
      ...notification,
      producerKey: false,
      requestHash: `${PART_MARK}${notification.requestHash}`,
    };
    const statements = await Promise.all(
      deliveries.map((d) => this.forId(d.id).insertStatements(part, [d], nowMs, { orIgnore: true })),
    );
    return statements.flat();
  }

  /**
   * A page of a notification's delivery ids after `after`, in id order, over every database (for a
   * notification with more than a read lists). Null when no such notification was accepted.
   */
  async deliveryIdsAfter(id: string, after: string | null, limit: number): Promise<string[] | null> {
    const [located] = await this.home.locate([id]);
    if (!located) return null;
    const where: Located = {
      id,
      head: null,
      ms: (located.head ? idTimeMs('dlv', located.head) : null) ?? located.ms,
    };
    const pages = await Promise.all(this.all.map((repo) => repo.deliveryIdsAfter(where, after, limit)));
    return [...new Set(pages.flat())].sort().slice(0, limit);
  }

  async getDeliveries(ids: readonly string[]): Promise<Delivery[]> {
    const found = (await Promise.all(this.grouped(ids, (repo, group) => repo.getDeliveries(group)))).flat();
    const order = new Map(ids.map((id, i) => [id, i]));
    return found.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  }

  /**
   * The ids whose bucket is moving, so they wait rather than go out or be given up: locked in the
   * map this router read, or missing from their database while it holds their bucket locked (the
   * map predates a switch). One query per database with missing ids, none otherwise.
   */
  async movingAmong(ids: readonly string[], found: ReadonlyMap<string, unknown>): Promise<Set<string>> {
    const moving = new Set(ids.filter((id) => this.router.isMoving(bucketOfId(id) ?? 0)));
    const missing = ids.filter((id) => !found.has(id) && !moving.has(id));
    await Promise.all(
      [...this.router.groupIds(missing)].map(async ([shard, group]) => {
        const locked = new Set((await new BucketRows(shard.db).locks()).map((lock) => lock.bucket));
        for (const id of group) if (locked.has(bucketOfId(id) ?? 0)) moving.add(id);
      }),
    );
    return moving;
  }

  async loadForSending(ids: readonly string[]): Promise<Map<string, DeliveryToSend>> {
    const maps = await Promise.all(this.grouped(ids, (repo, group) => repo.loadForSending(group)));
    return new Map(maps.flatMap((m) => [...m]));
  }

  /**
   * Statements writing a notification: each bucket gets its part (its deliveries, the first of
   * them its head, carrying the data) in its database; a producer's id gets its key row in the
   * home database, naming the first part's head.
   */
  async insertStatements(
    notification: NewNotification,
    deliveries: readonly NewDelivery[],
    nowMs: number,
  ): Promise<D1PreparedStatement[]> {
    // One part per bucket, each with its own head: a bucket moves alone, whole and readable.
    const parts = [...byKey([deliveries.slice()], (d) => String(bucketOfId(d.id))).values()];
    // Ids sort by bucket first: the first head keeps the planned order when there are several.
    const plan = parts.length > 1 ? deliveries.map((d) => d.id) : undefined;
    const first = parts[0];
    // Each database gets its parts in primary-key order; the first part (the first delivery's) leads.
    const byId = [...parts].sort((a, b) => ((a[0]?.id ?? '') < (b[0]?.id ?? '') ? -1 : 1));
    const statements = (
      await Promise.all(
        byId.map((part) =>
          this.forId(part[0]?.id ?? '').insertStatements(
            {
              ...notification,
              producerKey: false,
              requestHash:
                part === first ? notification.requestHash : `${PART_MARK}${notification.requestHash}`,
              ...(part === first && plan ? { plan } : {}),
            },
            part,
            nowMs,
          ),
        ),
      )
    ).flat();
    const head = deliveries[0]?.id;
    if (notification.producerKey && head)
      statements.unshift(this.home.keyStatement(notification.id, head, nowMs));
    return statements;
  }

  /** The key row of a producer's id for a notification with no head of its own (sent to topics only). */
  keyStatementWithoutHead(key: string, nowMs: number): D1PreparedStatement {
    return this.home.keyStatement(key, null, nowMs);
  }

  /**
   * Statements counting the rows inserting these notifications writes, for the same commit, before
   * the inserts (each in its database): `created` for every delivery and its first status when that
   * is another, and `accepted` once per notification unless told otherwise (a topic's later pages),
   * with its first delivery, or in the home database when it has none yet (a send to topics, whose
   * record is there). Rows already there (an INSERT OR IGNORE of the same ids) are not counted again.
   */
  newRowsCountStatements(
    written: readonly {
      notification: Pick<NewNotification, 'type'>;
      deliveries: readonly NewDelivery[];
      accepted?: boolean;
    }[],
  ): D1PreparedStatement[] {
    const rows = written.flatMap(({ notification, deliveries, accepted = true }) =>
      deliveries.map((d, index) => ({
        id: d.id,
        type: notification.type,
        counts: [
          deliveryCount(d.channel, 'created'),
          ...(d.status === 'created' ? [] : [deliveryCount(d.channel, d.status)]),
          ...(accepted && index === 0 ? [ACCEPTED] : []),
        ],
      })),
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    const withoutRows = written.filter((w) => w.deliveries.length === 0 && w.accepted !== false);
    const types = withoutRows.map((w) => w.notification.type);
    return [
      ...(types.length > 0 ? [this.home.acceptedCountStatement(types)] : []),
      ...this.grouped(
        rows.map((row) => row.id),
        (repo, ids) => repo.newRowsCountStatements(ids.flatMap((id) => byId.get(id) ?? [])),
      ).flat(),
    ];
  }

  /**
   * Undoes what a commit across databases wrote before one of them failed: the deliveries in each
   * database, on its own (one failing database keeps none of the others from being cleaned), and
   * the producer ids' key rows this request wrote. Answers whether every database took it.
   */
  async discard(
    written: readonly { notificationId: string; producerKey: boolean; deliveryIds: readonly string[] }[],
  ): Promise<boolean> {
    const keys = written.flatMap((w) => {
      const head = w.deliveryIds[0];
      return w.producerKey ? [this.home.releaseKeyStatement(w.notificationId, head ?? null)] : [];
    });
    const ids = written.flatMap((w) => w.deliveryIds);
    const work = [
      ...(keys.length > 0 ? [this.router.home.db.batch(keys)] : []),
      ...[...this.router.groupIds(ids)].map(([shard, group]) =>
        shard.db.batch(this.on(shard).removeStatements(group)),
      ),
    ];
    const settled = await Promise.allSettled(work);
    return settled.every((s) => s.status === 'fulfilled');
  }

  async markQueued(ids: readonly string[], nowMs: number): Promise<void> {
    await Promise.all(this.grouped(ids, (repo, group) => repo.markQueued(group, nowMs)));
  }

  /**
   * Statements recording outcomes, each database's after the statement counting them there, which
   * also adds the counts of the `answered` deliveries of that database (their answers committed
   * on their own earlier); a database with answered counts and no outcome gets that statement alone.
   */
  outcomeStatements(
    outcomes: readonly Outcome[],
    nowMs: number,
    options: { answered?: readonly AnsweredCounts[] } = {},
  ): D1PreparedStatement[] {
    const byDatabase = new Map<DeliveriesRepo, { outcomes: Outcome[]; answered: CountIncrement[] }>();
    const part = (id: string) => {
      const repo = this.forId(id);
      const found = byDatabase.get(repo) ?? { outcomes: [], answered: [] };
      byDatabase.set(repo, found);
      return found;
    };
    for (const o of outcomes) part(o.deliveryId).outcomes.push(o);
    for (const a of options.answered ?? []) part(a.deliveryId).answered.push(...a.counts);
    return [...byDatabase].flatMap(([repo, list]) =>
      repo.outcomeStatements(list.outcomes, nowMs, { answered: list.answered }),
    );
  }

  /**
   * Per database, the statement adding these answers' counts alone (see `outcomeStatements`), with
   * how many answers and counts it carries.
   */
  answeredCountStatements(
    answered: readonly AnsweredCounts[],
  ): { statement: D1PreparedStatement; answers: number; counts: number }[] {
    const byDatabase = new Map<DeliveriesRepo, AnsweredCounts[]>();
    for (const a of answered) {
      if (a.counts.length === 0) continue;
      const repo = this.forId(a.deliveryId);
      byDatabase.set(repo, [...(byDatabase.get(repo) ?? []), a]);
    }
    return [...byDatabase].flatMap(([repo, list]) =>
      repo.outcomeStatements([], 0, { answered: list.flatMap((a) => a.counts) }).map((statement) => ({
        statement,
        answers: list.length,
        counts: list.reduce((sum, a) => sum + a.counts.reduce((n, c) => n + c.n, 0), 0),
      })),
    );
  }

  /** A provider's answer as it arrives, in its database: see `DeliveriesRepo.answerStatements`. */
  answerStatements(outcome: Outcome, nowMs: number): D1PreparedStatement[] {
    return this.forId(outcome.deliveryId).answerStatements(outcome, nowMs);
  }

  /** What an answer's commit found to count, from its results. */
  answerCounts(results: readonly D1Result[]): CountIncrement[] {
    return DeliveriesRepo.answerCounts(results);
  }

  resetForReplayStatements(
    ids: readonly string[],
    claimedAtMs: number,
    nowMs: number,
  ): D1PreparedStatement[] {
    return [...this.router.groupIds(ids)].flatMap(([shard, group]) =>
      this.on(shard).resetForReplayStatements(group, claimedAtMs, nowMs),
    );
  }

  failUnsentReplayStatements(ids: readonly string[], nowMs: number): D1PreparedStatement[] {
    return [...this.router.groupIds(ids)].flatMap(([shard, group]) =>
      this.on(shard).failUnsentReplayStatements(group, nowMs),
    );
  }

  async unclaim(ids: readonly string[], nowMs: number, updatedAtMs = nowMs): Promise<void> {
    await Promise.all(this.grouped(ids, (repo, group) => repo.unclaim(group, nowMs, updatedAtMs)));
  }

  /**
   * Erasure reaches every database (a user's older rows may be elsewhere). A notification's data is
   * erased only when no other recipient has a delivery of it, in any database: the other
   * databases are asked about the user's notifications first.
   */
  async eraseStatements(
    userId: string,
    nowMs: number,
    contactErased: boolean,
  ): Promise<D1PreparedStatement[]> {
    const all = this.all;
    const theirs = all.length > 1 ? await Promise.all(all.map((repo) => repo.notificationsOf(userId))) : [];
    const shared = new Set<string>();
    await Promise.all(
      all.map(async (repo, i) => {
        const elsewhere = theirs.flatMap((located, j) => (j === i ? [] : located));
        if (elsewhere.length === 0) return;
        for (const id of await repo.sharedWithOthers(elsewhere, userId)) shared.add(id);
      }),
    );
    return all.flatMap((repo) => repo.eraseStatements(userId, nowMs, contactErased, [...shared]));
  }

  /** Cancels, in each delivery's database, those still waiting to be sent; the ids canceled. */
  async cancel(ids: readonly string[], nowMs: number): Promise<string[]> {
    const parts = await Promise.all(this.grouped(ids, (repo, group) => repo.cancel(group, nowMs)));
    return parts.flat();
  }

  /** The escalation steps among these deliveries, each read in its database. */
  async escalationRows(ids: readonly string[]): Promise<EscalationRow[]> {
    const parts = await Promise.all(this.grouped(ids, (repo, group) => repo.escalationRows(group)));
    return parts.flat();
  }

  skipLaterSteps(row: EscalationRow, step: number, status: DeliveryStatus, nowMs: number): Promise<string[]> {
    return this.forId(row.id).skipLaterSteps(row, step, status, nowMs);
  }

  stepStatuses(row: EscalationRow, step: number): Promise<DeliveryStatus[]> {
    return this.forId(row.id).stepStatuses(row, step);
  }

  bringForward(row: EscalationRow, step: number, nowMs: number): Promise<{ id: string; channel: Channel }[]> {
    return this.forId(row.id).bringForward(row, step, nowMs);
  }

  async digestedInto(itemIds: readonly string[], carrierId: string, nowMs: number): Promise<void> {
    await Promise.all(this.grouped(itemIds, (repo, group) => repo.digestedInto(group, carrierId, nowMs)));
  }

  claimCarrier(id: string, count: number, nowMs: number): Promise<boolean> {
    return this.forId(id).claimCarrier(id, count, nowMs);
  }

  /** The notifications sharing a producer's cancelKey, in every database (at most `limit`). */
  async notificationsWithCancelKey(cancelKey: string, limit: number): Promise<string[]> {
    const parts = await Promise.all(
      this.all.map((repo) => repo.notificationsWithCancelKey(cancelKey, limit)),
    );
    return [...new Set(parts.flat())].sort().slice(0, limit);
  }

  async hasDeliveriesFor(userId: string): Promise<boolean> {
    return (await Promise.all(this.all.map((repo) => repo.hasDeliveriesFor(userId)))).some(Boolean);
  }

  async erasureOf(userId: string): Promise<ErasureRecord | null> {
    const records = (await Promise.all(this.all.map((repo) => repo.erasureOf(userId)))).filter(
      (r): r is ErasureRecord => r !== null,
    );
    if (records.length === 0) return null;
    return records.reduce((a, b) => ({
      at: [a.at, b.at].sort().at(-1) ?? a.at,
      contact: a.contact || b.contact,
      deliveries: a.deliveries + b.deliveries,
      notifications: a.notifications + b.notifications,
    }));
  }

  async listForUser(userId: string, limit: number): Promise<Delivery[]> {
    const lists = await Promise.all(
      this.router.shards.map(async (shard) =>
        (await this.on(shard).listForUser(userId, limit)).filter((d) => this.router.owns(shard, d.id)),
      ),
    );
    return lists
      .flat()
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
      .slice(0, limit);
  }

  /**
   * Lists notifications newest first: each database lists its page, the pages are merged in the
   * one order (created_at, then id, both descending; the cursor works the same across databases),
   * and the page's notifications are read whole.
   */
  async list(filters: ListFilters): Promise<Notification[]> {
    const pages = (await Promise.all(this.all.map((repo) => repo.list(filters)))).flat();
    const newestFirst = [...new Map(pages.map((n) => [n.id, n])).values()].sort((a, b) =>
      a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.id < b.id ? 1 : -1,
    );
    const page = newestFirst.slice(0, filters.limit);
    const whole = new Map((await this.getNotifications(page.map((n) => n.id))).map((n) => [n.id, n]));
    return page.map((n) => whole.get(n.id) ?? n);
  }

  releaseKeys(keys: readonly string[], olderThanMs: number): Promise<void> {
    return this.home.releaseKeys(keys, olderThanMs);
  }

  removeKeysStatement(beforeMs: number, limit: number): D1PreparedStatement {
    return this.home.removeKeysStatement(beforeMs, limit);
  }
}
