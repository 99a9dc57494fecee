import type { Channel } from '../domain/channels';
import type { DeliveryStatus } from '../domain/status';
import { idBoundAt } from '../lib/ids';
import { bucketOfIdSql } from './bucket-rows';

/**
 * Aggregate reads for metrics and the dashboard. Every query bounds `deliveries` by a range of its
 * time-ordered primary key (`dlv_<time><random>`), so none needs an index on `created_at` or
 * `status` and none adds a row written to the delivery happy path. They cost rows *read*: about
 * one per delivery in the scanned range.
 */

/** Deliveries created in a window, grouped by channel, type and status, with funnel stages. */
export interface StatusCountRow {
  channel: Channel;
  type: string;
  status: DeliveryStatus;
  count: number;
  /** How many of them reached each stage of the funnel (a later stage implies the earlier ones). */
  queued: number;
  sent: number;
  delivered: number;
  opened: number;
  clicked: number;
}

export interface BacklogRow {
  channel: Channel;
  status: 'created' | 'queued' | 'deferred';
  count: number;
  /** Epoch ms since which the oldest due delivery of this group has waited; null when none is due. */
  oldestDueAt: number | null;
}

export interface DeadLetterCountRow {
  channel: Channel;
  count: number;
  /** Created in the recent period asked for. */
  recent: number;
}

export interface LatencySummary {
  count: number;
  sumMs: number;
  p50Ms: number | null;
  p95Ms: number | null;
}

/**
 * Latencies as counted by their value cut to three significant digits (2,345 ms counts at 2,340):
 * histograms of several databases add up, and a percentile read from the sum is within 1 % of the
 * exact one (exact below one second).
 */
export interface LatencyHistogram {
  count: number;
  sumMs: number;
  /** [value in ms, how many], by value. */
  bins: [number, number][];
}

export interface VolumeRow {
  channel: Channel;
  /** Bucket number counted from the window's start. */
  bucket: number;
  count: number;
}

/** What one metrics read asks for. */
export interface StatsQuery {
  fromMs: number;
  nowMs: number;
  /** Only deliveries of this notification type. */
  type?: string;
  /** How far back the backlog scan looks (open deliveries created earlier are not counted). */
  backlogLookbackMs: number;
  /** How much earlier than `fromMs` a delivery sent in the window may have been created. */
  latencyLookbackMs: number;
  /** Dead letters created in `[deadLettersSinceMs, nowMs)` count as `recent`. */
  deadLettersSinceMs: number;
}

export interface StatsSnapshot {
  statusCounts: StatusCountRow[];
  accepted: number;
  backlog: BacklogRow[];
  deadLetters: DeadLetterCountRow[];
  latency: LatencyHistogram;
}

const OPEN_STATUSES = "('created', 'queued', 'deferred')";

/**
 * Stages are read from the history (not only the current status), so a delivery that was opened
 * and later complained still counts as opened. `seen` is `,created,queued,sent,…,`: the statuses
 * it went through, delimited so that `instr` matches whole names.
 */
const STATUS_COUNTS_SQL = (typeFilter: string) => `
  SELECT channel, type, status, count(*) AS count,
    sum(q OR s OR dl OR o OR c) AS queued,
    sum(s OR dl OR o OR c) AS sent,
    sum(dl OR o OR c) AS delivered,
    sum(o OR c) AS opened,
    sum(c) AS clicked
  FROM (
    SELECT channel, type, status,
      instr(seen, ',queued,') > 0 AS q,
      (sent_at IS NOT NULL OR instr(seen, ',sent,') > 0) AS s,
      instr(seen, ',delivered,') > 0 AS dl,
      instr(seen, ',opened,') > 0 AS o,
      instr(seen, ',clicked,') > 0 AS c
    FROM (
      SELECT d.channel, d.type, d.status, d.sent_at,
        ',' || coalesce((SELECT group_concat(json_extract(h.value, '$.status'), ',') FROM json_each(d.history) h), '') || ',' AS seen
      FROM deliveries d
      WHERE d.id >= ?1 AND d.created_at >= ?2 ${typeFilter}
    )
  )
  GROUP BY channel, type, status
  ORDER BY channel, type, status`;

/**
 * Producers' events in: notifications created in the window, counted by their first head (a
 * notification's other parts, in other buckets, carry a `part:` request hash).
 */
const ACCEPTED_SQL = (typeFilter: string) => `
  SELECT count(*) AS n
  FROM deliveries d
  WHERE d.id >= ?1 AND d.created_at >= ?2 AND d.request_hash IS NOT NULL AND d.request_hash NOT LIKE 'part:%' ${typeFilter}`;

/**
 * Open deliveries now. A delivery is due from its creation or its notification's `sendAt`,
 * whichever is later; `deferred` ones wait on purpose (quiet hours, rate limits), so they count in
 * the backlog but not in its age.
 */
const BACKLOG_SQL = (typeFilter: string) => `
  SELECT d.channel, d.status, count(*) AS count,
    min(CASE WHEN d.status IN ('created', 'queued') AND coalesce(d.send_at, 0) <= ?2
      THEN max(d.created_at, coalesce(d.send_at, 0)) END) AS oldest_due_at
  FROM deliveries d
  WHERE d.id >= ?1 AND d.status IN ${OPEN_STATUSES} ${typeFilter}
  GROUP BY d.channel, d.status`;

const DEAD_LETTERS_SQL = (typed: boolean, filter = '') =>
  typed
    ? `SELECT dl.channel, count(*) AS count, sum(dl.created_at >= ?1 AND dl.created_at < ?2) AS recent
       FROM dead_letters dl
         JOIN deliveries d ON d.id = dl.delivery_id
       WHERE dl.replayed_at IS NULL AND d.type = ?3 ${filter}
       GROUP BY dl.channel`
    : `SELECT dl.channel, count(*) AS count, sum(dl.created_at >= ?1 AND dl.created_at < ?2) AS recent
       FROM dead_letters dl WHERE dl.replayed_at IS NULL ${filter} GROUP BY dl.channel`;

/**
 * Latency, from when the delivery was due (created, or its `sendAt`) to `sent_at`, as a histogram
 * of values cut to three significant digits (see `LatencyHistogram`).
 */
const LATENCY_SQL = (typeFilter: string) => `
  SELECT (ms / f) * f AS bin, count(*) AS n, sum(ms) AS total_ms
  FROM (
    SELECT ms, CASE WHEN ms < 1000 THEN 1 WHEN ms < 10000 THEN 10 WHEN ms < 100000 THEN 100
      WHEN ms < 1000000 THEN 1000 WHEN ms < 10000000 THEN 10000 WHEN ms < 100000000 THEN 100000
      ELSE 1000000 END AS f
    FROM (
      SELECT max(0, d.sent_at - max(d.created_at, coalesce(d.send_at, 0))) AS ms
      FROM deliveries d
      WHERE d.id >= ?1 AND d.sent_at >= ?2 ${typeFilter}
    )
  )
  GROUP BY bin
  ORDER BY bin`;

const VOLUME_SQL = (filter: string) => `
  SELECT d.channel, CAST((d.created_at - ?2) / ?3 AS INTEGER) AS bucket, count(*) AS count
  FROM deliveries d
  WHERE d.id >= ?1 AND d.created_at >= ?2 ${filter}
  GROUP BY d.channel, bucket
  ORDER BY bucket, d.channel`;

/** The only code with SQL for metrics: a handful of GROUP BY reads, sent to D1 in one batch. */
export class StatsRepo {
  /**
   * `foreign`: buckets whose rows this database holds for another during a move (a copy not yet
   * switched to, or a source not yet cleaned); they are not counted here.
   */
  constructor(
    private readonly db: D1Database,
    private readonly foreign: () => readonly number[] = () => [],
  ) {}

  /** A condition leaving out rows of foreign buckets (nothing when there are none). */
  private notForeign(idColumn: string): string {
    const buckets = this.foreign().filter(Number.isInteger);
    return buckets.length === 0 ? '' : `AND ${bucketOfIdSql(idColumn)} NOT IN (${buckets.join(',')})`;
  }

  /** Everything `/v1/metrics` shows, in one round trip to D1. */
  async snapshot(q: StatsQuery): Promise<StatsSnapshot> {
    const typeFilter = `${q.type === undefined ? '' : 'AND d.type = ?3'} ${this.notForeign('d.id')}`;
    const typeParam = q.type === undefined ? [] : [q.type];
    const from = idBoundAt('dlv', q.fromMs);
    const [counts, accepted, backlog, deadLetters, latency] = await this.db.batch<Record<string, unknown>>([
      this.db.prepare(STATUS_COUNTS_SQL(typeFilter)).bind(from, q.fromMs, ...typeParam),
      this.db.prepare(ACCEPTED_SQL(typeFilter)).bind(from, q.fromMs, ...typeParam),
      this.db
        .prepare(BACKLOG_SQL(typeFilter))
        .bind(idBoundAt('dlv', q.nowMs - q.backlogLookbackMs), q.nowMs, ...typeParam),
      q.type === undefined
        ? this.db
            .prepare(DEAD_LETTERS_SQL(false, this.notForeign('dl.delivery_id')))
            .bind(q.deadLettersSinceMs, q.nowMs)
        : this.db
            .prepare(DEAD_LETTERS_SQL(true, this.notForeign('dl.delivery_id')))
            .bind(q.deadLettersSinceMs, q.nowMs, q.type),
      this.db
        .prepare(LATENCY_SQL(typeFilter))
        .bind(idBoundAt('dlv', q.fromMs - q.latencyLookbackMs), q.fromMs, ...typeParam),
    ]);
    return {
      statusCounts: (counts?.results ?? []) as unknown as StatusCountRow[],
      accepted: Number((accepted?.results[0] as { n?: number } | undefined)?.n ?? 0),
      backlog: toBacklog(backlog?.results),
      deadLetters: toDeadLetters(deadLetters?.results),
      latency: toLatency((latency?.results ?? []) as unknown as LatencyRow[]),
    };
  }

  /** Open deliveries and dead letters only: the minute cron's cheaper read. */
  async backlogAndDeadLetters(
    nowMs: number,
    backlogLookbackMs: number,
    deadLettersSinceMs: number,
  ): Promise<{ backlog: BacklogRow[]; deadLetters: DeadLetterCountRow[] }> {
    const [backlog, deadLetters] = await this.db.batch<Record<string, unknown>>([
      this.db
        .prepare(BACKLOG_SQL(this.notForeign('d.id')))
        .bind(idBoundAt('dlv', nowMs - backlogLookbackMs), nowMs),
      this.db
        .prepare(DEAD_LETTERS_SQL(false, this.notForeign('dl.delivery_id')))
        .bind(deadLettersSinceMs, nowMs),
    ]);
    return {
      backlog: toBacklog(backlog?.results),
      deadLetters: toDeadLetters(deadLetters?.results),
    };
  }

  /** Dead letters not replayed, per channel. */
  async deadLetters(): Promise<DeadLetterCountRow[]> {
    const { results } = await this.db
      .prepare(DEAD_LETTERS_SQL(false, this.notForeign('dl.delivery_id')))
      .bind(0, 0)
      .all();
    return toDeadLetters(results);
  }

  /** Deliveries created since `fromMs` per channel, in buckets of `bucketMs`. */
  async volume(fromMs: number, bucketMs: number): Promise<VolumeRow[]> {
    const { results } = await this.db
      .prepare(VOLUME_SQL(this.notForeign('d.id')))
      .bind(idBoundAt('dlv', fromMs), fromMs, bucketMs)
      .all<VolumeRow>();
    return results;
  }
}

interface RawBacklogRow {
  channel: Channel;
  status: BacklogRow['status'];
  count: number;
  oldest_due_at: number | null;
}

function toBacklog(rows: readonly unknown[] = []): BacklogRow[] {
  return (rows as RawBacklogRow[]).map((r) => ({
    channel: r.channel,
    status: r.status,
    count: r.count,
    oldestDueAt: r.oldest_due_at,
  }));
}

function toDeadLetters(rows: readonly unknown[] = []): DeadLetterCountRow[] {
  return (rows as { channel: Channel; count: number; recent: number | null }[]).map((r) => ({
    channel: r.channel,
    count: r.count,
    recent: r.recent ?? 0,
  }));
}

interface LatencyRow {
  bin: number;
  n: number;
  total_ms: number;
}

function toLatency(rows: readonly LatencyRow[]): LatencyHistogram {
  return {
    count: rows.reduce((sum, r) => sum + r.n, 0),
    sumMs: rows.reduce((sum, r) => sum + r.total_ms, 0),
    bins: rows.map((r) => [r.bin, r.n]),
  };
}

/** Histograms of several databases as one. */
export function addLatencies(parts: readonly LatencyHistogram[]): LatencyHistogram {
  const bins = new Map<number, number>();
  for (const part of parts) for (const [ms, n] of part.bins) bins.set(ms, (bins.get(ms) ?? 0) + n);
  return {
    count: parts.reduce((sum, p) => sum + p.count, 0),
    sumMs: parts.reduce((sum, p) => sum + p.sumMs, 0),
    bins: [...bins].sort((a, b) => a[0] - b[0]),
  };
}

/** Nearest-rank p50 and p95 (rank ceil(p·n)) of a histogram. */
export function summarizeLatency(histogram: LatencyHistogram): LatencySummary {
  const at = (p: number): number | null => {
    const rank = Math.ceil((p * histogram.count) / 100);
    let seen = 0;
    for (const [ms, n] of histogram.bins) {
      seen += n;
      if (seen >= rank) return ms;
    }
    return null;
  };
  return { count: histogram.count, sumMs: histogram.sumMs, p50Ms: at(50), p95Ms: at(95) };
}
