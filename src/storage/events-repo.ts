import { canTransition, type DeliveryStatus, type HistoryEntry, STATUSES } from '../domain/status';
import { redact } from '../lib/redact';
import type { EscalationRow } from './deliveries-repo';

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
const STATEMENTS_PER_BATCH = 100;

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

/** Status changes reported from outside (provider callbacks, opens, clicks, unsubscribes). */
export class EventsRepo {
  constructor(private readonly db: D1Database) {}

  /**
   * One statement per event: the history entry is always appended (up to MAX_HISTORY_ENTRIES);
   * the status (and its reason) moves only along the state machine. SET expressions all read the
   * row as it was, so the CASE decides on the old status, and the single UPDATE is race-free.
   * An unknown delivery id matches no row and writes nothing. With `firstOnly` the event applies
   * only when the history holds none of its status yet, so a repeat (a second open) changes no
   * row and writes nothing; the check and the write are the same statement.
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
    const first = options.firstOnly
      ? `AND NOT EXISTS (SELECT 1 FROM json_each(history) WHERE json_extract(value, '$.status') = ${literal(event.status)})`
      : '';
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
   * Applies an event only when the delivery's history does not hold its status yet (the first
   * open, the first click); a repeat writes nothing. Returns whether it was applied, and the
   * delivery's escalation step when it is one (read by the same statement).
   */
  async applyFirst(
    event: StatusEvent,
    nowMs: number,
  ): Promise<{ applied: boolean; step: EscalationRow | null }> {
    const { results } = await this.applyStatement(event, nowMs, { firstOnly: true }).all<
      EscalationRow & { escalation: string | null }
    >();
    const row = results[0];
    return { applied: row !== undefined, step: row?.escalation ? row : null };
  }

  /** The statements for `events`, in order, so several events for one delivery apply in sequence. */
  applyStatements(events: readonly StatusEvent[], nowMs: number): D1PreparedStatement[] {
    return events.map((event) => this.applyStatement(event, nowMs));
  }

  /**
   * Applies status events in one D1 batch (one per 100 events). Returns, per event, whether a
   * delivery with that id existed.
   */
  apply(events: readonly StatusEvent[], nowMs: number): Promise<boolean[]> {
    return this.runBatches(this.applyStatements(events, nowMs));
  }

  /** Runs statements in D1 batches of STATEMENTS_PER_BATCH; true per statement that changed a row. */
  async runBatches(statements: readonly D1PreparedStatement[]): Promise<boolean[]> {
    const changed: boolean[] = [];
    for (let i = 0; i < statements.length; i += STATEMENTS_PER_BATCH) {
      const results = await this.db.batch(statements.slice(i, i + STATEMENTS_PER_BATCH));
      for (const result of results) changed.push((result.meta?.changes ?? 0) > 0);
    }
    return changed;
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
