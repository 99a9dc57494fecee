import { canTransition, type DeliveryStatus, type HistoryEntry, STATUSES } from '../domain/status';
import { chunk, groupBy } from '../lib/collections';
import { redact } from '../lib/redact';
import type { EscalationRow } from './deliveries-repo';
import { deliveryCountSql, MetricCountersRepo } from './metric-counters-repo';

/** A status change reported from outside the send path: a provider callback, the pixel, a click. */
export interface StatusEvent {
  deliveryId: string;
  status: DeliveryStatus;
  reason?: string;
  provider?: string;
  /** When it happened (epoch ms): the history entry's time. */
  at: number;
}

/**
 * A delivery's history stops growing at this many entries (the status still moves): a pixel
 * loaded a thousand times must not turn one row into a megabyte.
 */
export const MAX_HISTORY_ENTRIES = 100;

/** D1 runs a batch as one transaction; this keeps each one well inside the per-invocation limits. */
export const STATEMENTS_PER_BATCH = 100;

/** SQL string literal of a status name (they are fixed identifiers from the domain table). */
const literal = (status: DeliveryStatus) => `'${status}'`;

/**
 * For each target status, the SQL condition "the current status may move there", generated from
 * the domain's state machine so the two can never disagree.
 */
const MAY_MOVE_TO: Record<DeliveryStatus, string> = Object.fromEntries(
  STATUSES.map((to) => {
    const from = STATUSES.filter((candidate) => canTransition(candidate, to));
    return [to, from.length > 0 ? `status IN (${from.map(literal).join(', ')})` : '0'];
  }),
) as Record<DeliveryStatus, string>;

/** SQL: the delivery's history holds no event of this status yet (a first open, a first click). */
const noneYet = (status: DeliveryStatus) =>
  `NOT EXISTS (SELECT 1 FROM json_each(history) WHERE json_extract(value, '$.status') = ${literal(status)})`;

/** Statements applying events in one database: each unit is one batch, its count first. */
export interface EventUnits {
  units: D1PreparedStatement[][];
  /** The UPDATE of each event, in the events' order (its result says whether the row exists). */
  updates: D1PreparedStatement[];
}

/** Status changes reported from outside (provider callbacks, opens, clicks, unsubscribes). */
export class EventsRepo {
  private readonly counters: MetricCountersRepo;

  constructor(private readonly db: D1Database) {
    this.counters = new MetricCountersRepo(db);
  }

  /**
   * One statement per event: the history entry is always appended (up to MAX_HISTORY_ENTRIES);
   * the status (and its reason) moves only along the state machine. SET expressions all read the
   * row as it was, so the CASE decides on the old status, and the single UPDATE is race-free.
   * An unknown delivery id matches no row and writes nothing. With `firstOnly` the event applies
   * only when the history holds none of its status yet, so a repeat (a second open) changes no
   * row and writes nothing; the check and the write are the same statement. Not counted: it runs
   * after `countStatement` of its events (see applyUnits).
   */
  applyStatement(
    given: StatusEvent,
    nowMs: number,
    options: { firstOnly?: boolean } = {},
  ): D1PreparedStatement {
    const event = given.reason ? { ...given, reason: redact(given.reason) } : given;
    const entry: HistoryEntry = {
      status: event.status,
      at: new Date(event.at).toISOString(),
      ...(event.reason ? { reason: event.reason } : {}),
      ...(event.provider ? { provider: event.provider } : {}),
    };
    const moves = MAY_MOVE_TO[event.status];
    const first = options.firstOnly ? `AND ${noneYet(event.status)}` : '';
    return this.db
      .prepare(
        `UPDATE deliveries SET
           status = CASE WHEN ${moves} THEN ? ELSE status END,
           reason = CASE WHEN ${moves} THEN ? ELSE reason END,
           updated_at = ?,
           history = CASE WHEN json_array_length(history) < ${MAX_HISTORY_ENTRIES}
             THEN json_insert(history, '$[#]', json(?)) ELSE history END
         WHERE id = ? ${first}${options.firstOnly ? ' RETURNING id, notification_id, user_id, head_id, escalation' : ''}`,
      )
      .bind(event.status, event.reason ?? null, nowMs, JSON.stringify(entry), event.deliveryId);
  }

  /**
   * The statement counting the status changes these events make (of distinct deliveries): run just
   * before their UPDATEs in the same batch, it finds each row as its UPDATE will, and counts it
   * when the state machine lets it move to a status it is not in yet.
   */
  countStatement(events: readonly StatusEvent[], options: { firstOnly?: boolean } = {}): D1PreparedStatement {
    const byStatus = [...groupBy(events, (e) => e.status)];
    const selects = byStatus.map(
      ([status]) =>
        `SELECT type, ${deliveryCountSql('channel', literal(status))} AS key, 1 AS n FROM deliveries
         WHERE id IN (SELECT value FROM json_each(?)) AND ${MAY_MOVE_TO[status]} AND status != ${literal(status)}
         ${options.firstOnly ? `AND ${noneYet(status)}` : ''}`,
    );
    return this.counters.countStatement(
      selects.join(' UNION ALL '),
      byStatus.map(([, list]) => JSON.stringify(list.map((e) => e.deliveryId))),
    );
  }

  /**
   * Statements applying events here in their order, as units each to run in one batch: round k takes
   * the k-th event of every delivery (at most STATEMENTS_PER_BATCH - 1 a unit), after the statement
   * counting the changes of that round, so several events of one delivery count in sequence.
   */
  applyUnits(events: readonly StatusEvent[], nowMs: number): EventUnits {
    const updates = events.map((event) => this.applyStatement(event, nowMs));
    const rounds: number[][] = [];
    const seen = new Map<string, number>();
    events.forEach((event, index) => {
      const round = seen.get(event.deliveryId) ?? 0;
      seen.set(event.deliveryId, round + 1);
      rounds[round] = [...(rounds[round] ?? []), index];
    });
    const units = rounds.flatMap((round) =>
      chunk(round, STATEMENTS_PER_BATCH - 1).map((part) => [
        this.countStatement(part.map((i) => events[i] as StatusEvent)),
        ...part.map((i) => updates[i] as D1PreparedStatement),
      ]),
    );
    return { units, updates };
  }

  /**
   * Applies an event only when the delivery's history does not hold its status yet (the first
   * open, the first click); a repeat writes nothing. Returns whether it was applied, and the
   * delivery's escalation step when it is one (read by the same statement).
   */
  async applyFirst(
    event: StatusEvent,
    nowMs: number,
  ): Promise<{ applied: boolean; step: EscalationRow | null }> {
    const [, update] = await this.db.batch<EscalationRow & { escalation: string | null }>([
      this.countStatement([event], { firstOnly: true }),
      this.applyStatement(event, nowMs, { firstOnly: true }),
    ]);
    const row = update?.results[0];
    return { applied: row !== undefined, step: row?.escalation ? row : null };
  }
}

/** Of every this many replay checks, one also reclaims expired keys. */
const PRUNE_EVERY = 50;
const PRUNE_LIMIT = 500;

/**
 * Remembers provider callback replay keys in D1 (`callback_replays`), so a replayed callback is
 * refused in every isolate. Structurally a `ReplayGuard` (src/callbacks/types.ts).
 */
export class D1ReplayGuard {
  /** Keys this instance recorded, so a request that fails afterwards can give them back. */
  readonly spent: string[] = [];

  constructor(
    private readonly db: D1Database,
    private readonly now: () => number,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * true when `key` was seen and has not expired; otherwise records it for `ttlSeconds`. The
   * upsert only overwrites an expired row, so of two concurrent requests with one key exactly one
   * changes a row: the check and the record are one statement.
   */
  async seen(key: string, ttlSeconds: number): Promise<boolean> {
    const nowMs = this.now();
    const result = await this.db
      .prepare(
        `INSERT INTO callback_replays (key, expires_at) VALUES (?, ?)
         ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE callback_replays.expires_at <= ?`,
      )
      .bind(key, nowMs + ttlSeconds * 1000, nowMs)
      .run();
    const fresh = (result.meta?.changes ?? 0) > 0;
    if (fresh) this.spent.push(key);
    if (this.random() < 1 / PRUNE_EVERY) await this.prune(nowMs).catch(() => undefined);
    return !fresh;
  }

  /** Forgets the keys this instance recorded (best effort): the callback was not processed. */
  async release(): Promise<void> {
    const keys = this.spent.splice(0);
    if (keys.length === 0) return;
    await this.db
      .prepare(`DELETE FROM callback_replays WHERE key IN (${keys.map(() => '?').join(',')})`)
      .bind(...keys)
      .run();
  }

  /** Deletes up to PRUNE_LIMIT expired keys. */
  async prune(nowMs: number): Promise<number> {
    const result = await this.db
      .prepare(
        'DELETE FROM callback_replays WHERE key IN (SELECT key FROM callback_replays WHERE expires_at <= ? LIMIT ?)',
      )
      .bind(nowMs, PRUNE_LIMIT)
      .run();
    return result.meta?.changes ?? 0;
  }
}
