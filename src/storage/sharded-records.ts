import type { Channel } from '../domain/channels';
import { type CounterTotals, sumCounters } from '../domain/metric-counters';
import { chunk } from '../lib/collections';
import { EventsRepo, type EventUnits, STATEMENTS_PER_BATCH, type StatusEvent } from './events-repo';
import { MetricCountersRepo } from './metric-counters-repo';
import { type DeadLetter, OperationsRepo, type PendingAlert } from './operations-repo';
import { type OutboxEntry, OutboxRepo } from './outbox-repo';
import { PerShard } from './per-shard';
import { commitAcross, type ShardRouter } from './shard-router';
import {
  addLatencies,
  type BacklogRow,
  type DeadLetterCountRow,
  type LatencySummary,
  type StatsQuery,
  StatsRepo,
  type StatsSnapshot,
  type StatusCountRow,
  summarizeLatency,
  type VolumeRow,
} from './stats-repo';

/** What the sandbox captured, with each delivery's database. */
export class ShardedOutbox extends PerShard<OutboxRepo> {
  constructor(router: ShardRouter) {
    super(router, (db) => new OutboxRepo(db));
  }

  insertStatement(...args: Parameters<OutboxRepo['insertStatement']>): D1PreparedStatement {
    return this.forId(args[0].deliveryId).insertStatement(...args);
  }

  deleteForDeliveriesStatements(ids: readonly string[]): D1PreparedStatement[] {
    return this.grouped(ids, (repo, group) => repo.deleteForDeliveriesStatements(group)).flat();
  }

  /** A user's captured messages, in every database. */
  deleteForUserStatements(userId: string): D1PreparedStatement[] {
    return this.all.map((repo) => repo.deleteForUserStatement(userId));
  }

  async list(filters: Parameters<OutboxRepo['list']>[0]): Promise<OutboxEntry[]> {
    const lists = await Promise.all(
      this.router.shards.map(async (shard) =>
        (await this.on(shard).list(filters)).filter((e) => this.router.owns(shard, e.deliveryId)),
      ),
    );
    return lists
      .flat()
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : b.id - a.id))
      .slice(0, filters.limit);
  }
}

/** Concatenates units of statements into batches of at most `size`, never splitting one. */
function pack(units: readonly D1PreparedStatement[][], size: number): D1PreparedStatement[][] {
  const batches: D1PreparedStatement[][] = [];
  let current: D1PreparedStatement[] = [];
  for (const unit of units) {
    if (current.length > 0 && current.length + unit.length > size) {
      batches.push(current);
      current = [];
    }
    current = [...current, ...unit];
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Status changes from outside, each in its delivery's database, counted in the same batch. */
export class ShardedEvents extends PerShard<EventsRepo> {
  constructor(router: ShardRouter) {
    super(router, (db) => new EventsRepo(db));
  }

  /** Each database's units for its events, and each event's UPDATE in the events' order. */
  private unitsOf(events: readonly StatusEvent[], nowMs: number): EventUnits {
    const byDatabase = new Map<EventsRepo, number[]>();
    events.forEach((event, index) => {
      const repo = this.forId(event.deliveryId);
      byDatabase.set(repo, [...(byDatabase.get(repo) ?? []), index]);
    });
    const units: D1PreparedStatement[][] = [];
    const updates: D1PreparedStatement[] = [];
    for (const [repo, indexes] of byDatabase) {
      const part = repo.applyUnits(
        indexes.map((i) => events[i] as StatusEvent),
        nowMs,
      );
      units.push(...part.units);
      part.updates.forEach((update, k) => {
        updates[indexes[k] as number] = update;
      });
    }
    return { units, updates };
  }

  /**
   * Statements applying a few events within one commit of the caller's (an unsubscribe with its
   * preference), each database's after the statement counting them. `apply` takes any number.
   */
  applyStatements(events: readonly StatusEvent[], nowMs: number): D1PreparedStatement[] {
    return this.unitsOf(events, nowMs).units.flat();
  }

  applyFirst(event: StatusEvent, nowMs: number): ReturnType<EventsRepo['applyFirst']> {
    return this.forId(event.deliveryId).applyFirst(event, nowMs);
  }

  /**
   * Applies events in order, with `also` (other writes: suppressions), in batches of at most
   * STATEMENTS_PER_BATCH statements, each on its databases; a count and the changes it counts
   * always share one. Returns, per event, whether a delivery with that id existed.
   */
  async apply(
    events: readonly StatusEvent[],
    nowMs: number,
    also: readonly D1PreparedStatement[] = [],
  ): Promise<boolean[]> {
    const { units, updates } = this.unitsOf(events, nowMs);
    const changed = new Map<D1PreparedStatement, boolean>();
    for (const batch of pack([...units, ...chunk([...also], STATEMENTS_PER_BATCH)], STATEMENTS_PER_BATCH)) {
      const results = await commitAcross(batch, this.router.home.db);
      batch.forEach((statement, i) => {
        changed.set(statement, (results[i]?.meta?.changes ?? 0) > 0);
      });
    }
    return updates.map((update) => changed.get(update) ?? false);
  }
}

/** The counters of every database, added up (`GET /metrics`). */
export class ShardedCounters extends PerShard<MetricCountersRepo> {
  constructor(router: ShardRouter) {
    super(router, (db) => new MetricCountersRepo(db));
  }

  /**
   * The counts of every database bound, serving buckets or not (one whose buckets all moved away
   * keeps what it counted), each database once however many names bind it; optionally one type's.
   */
  async totals(type?: string): Promise<CounterTotals> {
    const databases = new Map(this.router.databases.map((shard) => [shard.db, shard]));
    const rows = await Promise.all([...databases.values()].map((shard) => this.on(shard).all(type)));
    return sumCounters(rows.flat());
  }
}

/** Sums rows that share a key. */
function sumBy<T>(rows: readonly T[], keyOf: (row: T) => string, add: (a: T, b: T) => T): T[] {
  const out = new Map<string, T>();
  for (const row of rows) {
    const key = keyOf(row);
    const seen = out.get(key);
    out.set(key, seen ? add(seen, row) : row);
  }
  return [...out.values()];
}

const mergeBacklog = (rows: BacklogRow[]) =>
  sumBy(
    rows,
    (r) => `${r.channel}:${r.status}`,
    (a, b) => ({
      ...a,
      count: a.count + b.count,
      oldestDueAt:
        a.oldestDueAt === null
          ? b.oldestDueAt
          : b.oldestDueAt === null
            ? a.oldestDueAt
            : Math.min(a.oldestDueAt, b.oldestDueAt),
    }),
  );

const mergeDeadLetters = (rows: DeadLetterCountRow[]) =>
  sumBy(
    rows,
    (r) => r.channel,
    (a, b) => ({ ...a, count: a.count + b.count, recent: a.recent + b.recent }),
  );

/** SQLite's ORDER BY channel, type, status (binary comparison), for rows merged from several databases. */
const byChannelTypeStatus = (a: StatusCountRow, b: StatusCountRow) => {
  const key = (r: StatusCountRow) => [r.channel, r.type, r.status];
  const [x, y] = [key(a), key(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] as string) < (y[i] as string) ? -1 : 1;
  return 0;
};

const mergeStatusCounts = (rows: StatusCountRow[]) =>
  sumBy(
    rows,
    (r) => `${r.channel}:${r.type}:${r.status}`,
    (a, b) => ({
      ...a,
      count: a.count + b.count,
      queued: a.queued + b.queued,
      sent: a.sent + b.sent,
      delivered: a.delivered + b.delivered,
      opened: a.opened + b.opened,
      clicked: a.clicked + b.clicked,
    }),
  ).sort(byChannelTypeStatus);

/**
 * Metrics over every database, merged: counts add up (rows in the order one database gives them),
 * latency histograms add up before the percentiles are read.
 */
export class ShardedStats extends PerShard<StatsRepo> {
  constructor(router: ShardRouter) {
    super(router, (db, shard) => new StatsRepo(db, () => router.foreignBuckets(shard)));
  }

  async snapshot(q: StatsQuery): Promise<Omit<StatsSnapshot, 'latency'> & { latency: LatencySummary }> {
    const parts = await Promise.all(this.all.map((repo) => repo.snapshot(q)));
    return {
      statusCounts: mergeStatusCounts(parts.flatMap((p) => p.statusCounts)),
      accepted: parts.reduce((n, p) => n + p.accepted, 0),
      backlog: mergeBacklog(parts.flatMap((p) => p.backlog)),
      deadLetters: mergeDeadLetters(parts.flatMap((p) => p.deadLetters)),
      latency: summarizeLatency(addLatencies(parts.map((p) => p.latency))),
    };
  }

  async backlogAndDeadLetters(nowMs: number, backlogLookbackMs: number, deadLettersSinceMs: number) {
    const parts = await Promise.all(
      this.all.map((repo) => repo.backlogAndDeadLetters(nowMs, backlogLookbackMs, deadLettersSinceMs)),
    );
    return {
      backlog: mergeBacklog(parts.flatMap((p) => p.backlog)),
      deadLetters: mergeDeadLetters(parts.flatMap((p) => p.deadLetters)),
    };
  }

  async deadLetters(): Promise<DeadLetterCountRow[]> {
    return mergeDeadLetters((await Promise.all(this.all.map((repo) => repo.deadLetters()))).flat());
  }

  async volume(fromMs: number, bucketMs: number): Promise<VolumeRow[]> {
    const rows = (await Promise.all(this.all.map((repo) => repo.volume(fromMs, bucketMs)))).flat();
    return sumBy(
      rows,
      (r) => `${r.bucket}:${r.channel}`,
      (a, b) => ({ ...a, count: a.count + b.count }),
    ).sort((a, b) => a.bucket - b.bucket || (a.channel < b.channel ? -1 : 1));
  }
}

/**
 * Operations: switches, alerts and the retention watermark in the home database; dead letters
 * with their deliveries (a replay claims a dead letter and resets its delivery in one batch).
 */
export class ShardedOperations extends PerShard<OperationsRepo> {
  private readonly home: OperationsRepo;

  constructor(router: ShardRouter) {
    super(router, (db) => new OperationsRepo(db));
    this.home = this.repos.get(router.home) ?? new OperationsRepo(router.home.db);
  }

  providerSwitches(): Promise<Map<string, boolean>> {
    return this.home.providerSwitches();
  }

  setProviderEnabled(name: string, enabled: boolean, nowMs: number): Promise<void> {
    return this.home.setProviderEnabled(name, enabled, nowMs);
  }

  raiseAlertStatement(key: string, message: string, nowMs: number): D1PreparedStatement {
    return this.home.raiseAlertStatement(key, message, nowMs);
  }

  takeAlerts(): Promise<PendingAlert[]> {
    return this.home.takeAlerts();
  }

  restoreAlerts(alerts: readonly PendingAlert[]): Promise<void> {
    return this.home.restoreAlerts(alerts);
  }

  purgedBefore(): Promise<number> {
    return this.home.purgedBefore();
  }

  markPurgedStatement(beforeMs: number, nowMs: number): D1PreparedStatement {
    return this.home.markPurgedStatement(beforeMs, nowMs);
  }

  recordDeadLetterStatement(deliveryId: string, channel: string, reason: string | null, nowMs: number) {
    return this.forId(deliveryId).recordDeadLetterStatement(deliveryId, channel, reason, nowMs);
  }

  deleteDeadLettersStatements(ids: readonly string[]): D1PreparedStatement[] {
    return this.grouped(ids, (repo, group) => repo.deleteDeadLettersStatements(group)).flat();
  }

  async listDeadLetters(channel: string | undefined, limit: number): Promise<DeadLetter[]> {
    const lists = await Promise.all(
      this.router.shards.map(async (shard) =>
        (await this.on(shard).listDeadLetters(channel, limit)).filter((d) =>
          this.router.owns(shard, d.deliveryId),
        ),
      ),
    );
    return lists
      .flat()
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
      .slice(0, limit);
  }

  async countDeadLetters(): Promise<number> {
    return (await Promise.all(this.all.map((repo) => repo.countDeadLetters()))).reduce((a, b) => a + b, 0);
  }

  /** Claims in each database its dead letters and runs `then` for those ids there, atomically per database. */
  async claimForReplay(
    ids: readonly string[],
    channel: Channel | undefined,
    claimedAtMs: number,
    then: (claimedAtMs: number, ids: string[]) => D1PreparedStatement[],
  ): Promise<{ id: string; channel: Channel }[]> {
    const claimed = await Promise.all(
      this.grouped(ids, (repo, group) =>
        repo.claimForReplay(group, channel, claimedAtMs, (at) => then(at, group)),
      ),
    );
    return claimed.flat();
  }

  unclaimReplayStatements(ids: readonly string[], claimedAtMs: number): D1PreparedStatement[] {
    return this.grouped(ids, (repo, group) => repo.unclaimReplayStatements(group, claimedAtMs)).flat();
  }
}
