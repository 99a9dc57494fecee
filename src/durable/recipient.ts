import { DurableObject } from 'cloudflare:workers';
import { isChannel } from '../domain/channels';
import {
  type DecisionRequest,
  type DeliveryOutcome,
  dedupeExpiresAt,
  LEASE_MS,
  rateScopeOf,
  rateVerdict,
  type SendRecord,
  sendRetainedUntil,
  type Verdict,
} from '../domain/politeness';

/**
 * Cleanup never runs sooner than this after it is scheduled: expired rows are harmless (every
 * query filters on time), so batching their deletion into one alarm an hour at most keeps alarm
 * invocations, which are billed requests, rare.
 */
const CLEANUP_DELAY_MS = 60 * 60 * 1000;

/*
 * Cost is counted per row written, so the schema is built around it (measured in workerd with
 * `cursor.rowsWritten`):
 * - WITHOUT ROWID: a table with a TEXT primary key otherwise keeps a hidden index beside it and
 *   every insert counts 2 rows; clustered on its key, an insert counts 1.
 * - No secondary index on `expires_at` or `dedupe_claims.delivery_id`: each would add a row to every
 *   insert of the happy path, to speed up the alarm and the failure path, which scan a table
 *   holding one recipient's last day of sends at most.
 * `CREATE TABLE IF NOT EXISTS` writes 2 rows once in an object's life and nothing after.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS dedupe_claims (
  channel TEXT NOT NULL,
  type TEXT NOT NULL,
  dedupe_key TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (channel, type, dedupe_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sends (
  delivery_id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  type TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

type SendRow = { delivery_id: string; channel: string; type: string; sent_at: number };

/** What one `decide` call accumulates before it commits. */
interface Batch {
  readonly minNowMs: number;
  /** The recipient's live sends, loaded on first need and kept current as the batch records more. */
  sends?: SendRecord[];
  /** Leases granted in this batch, published only once the batch's writes committed. */
  readonly granted: Map<string, number>;
  /** Earliest expiry among rows written, which the cleanup alarm must cover. */
  firstExpiryMs: number;
}

/**
 * One per recipient (`idFromName(userId)`): decides, for each delivery a queue consumer is about
 * to send, whether it may go now, and hears back how it went.
 *
 * - Lease (in memory): a delivery told `send` is held for {@link LEASE_MS} so a duplicate queue
 *   message handled by another consumer at the same time gets `leased`. Memory is enough: this
 *   instance is the only one for the id and runs one event at a time, so the map is the truth
 *   while it lives. If the object is evicted, leases vanish; a redelivery could then send again,
 *   which is the same narrow crash window the design accepts (and providers that take the
 *   delivery id as idempotency key close it). Persisting leases would cost 2 rows per send
 *   (grant, release) for that rare case.
 * - Dedupe claims and counted sends (SQLite): they must survive eviction for their whole window,
 *   or an evicted object would forget and let a user get 50 SMS. The happy path writes at most one
 *   row for each: nothing for a delivery that is leased, deduped, deferred or dropped, nothing on
 *   `complete` for a delivery that was sent.
 */
export class Recipient extends DurableObject<unknown> {
  /** deliveryId -> end of its lease (ms). Expired entries are dropped lazily. */
  private readonly leases = new Map<string, number>();
  /** Whether a cleanup alarm is pending; undefined until asked, after each start. */
  private cleanupPending: boolean | undefined;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    ctx.storage.sql.exec(SCHEMA);
  }

  /**
   * Verdicts for one recipient's deliveries of a queue batch, in order; earlier requests of the
   * batch count against later ones. Throws a RangeError, writing nothing, when a request carries a
   * malformed rate limit or dedupe window.
   */
  async decide(requests: DecisionRequest[]): Promise<Verdict[]> {
    if (requests.length === 0) return [];
    for (const request of requests) {
      rateScopeOf(request.channel, request.rateLimit);
      dedupeExpiresAt(request.nowMs, request.dedupeWindowSeconds);
    }
    const batch: Batch = {
      minNowMs: Math.min(...requests.map((request) => request.nowMs)),
      granted: new Map(),
      firstExpiryMs: Number.POSITIVE_INFINITY,
    };
    this.dropExpiredLeases(batch.minNowMs);
    // One transaction: either every verdict's rows are written or, on a throw, none are.
    const verdicts = this.ctx.storage.transactionSync(() =>
      requests.map((request) => this.decideOne(request, batch)),
    );
    for (const [deliveryId, untilMs] of batch.granted) this.leases.set(deliveryId, untilMs);
    if (Number.isFinite(batch.firstExpiryMs)) await this.scheduleCleanup(batch.firstExpiryMs);
    return verdicts;
  }

  /**
   * Releases the leases of deliveries the consumer is done with. A delivery that was not sent
   * gives back its rate-limit slot and its dedupe claim, so its retry (or a twin) may go later.
   */
  async complete(results: DeliveryOutcome[]): Promise<void> {
    const sql = this.ctx.storage.sql;
    for (const { deliveryId, sent } of results) {
      this.leases.delete(deliveryId);
      if (sent) continue;
      sql.exec('DELETE FROM sends WHERE delivery_id = ?', deliveryId);
      // Guarded by delivery id, so a claim that already passed to a twin is left alone.
      sql.exec('DELETE FROM dedupe_claims WHERE delivery_id = ?', deliveryId);
    }
    if (results.length > 0) this.dropExpiredLeases(Math.min(...results.map((result) => result.nowMs)));
  }

  /**
   * Deletes expired claims and sends, then sleeps until the next row expires; with nothing left,
   * no alarm is set, so an idle recipient costs nothing.
   */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const nowMs = Date.now();
    sql.exec('DELETE FROM dedupe_claims WHERE expires_at <= ?', nowMs);
    sql.exec('DELETE FROM sends WHERE expires_at <= ?', nowMs);
    const { next } = sql
      .exec<{ next: number | null }>(
        'SELECT min(expires_at) AS next FROM (SELECT expires_at FROM dedupe_claims UNION ALL SELECT expires_at FROM sends)',
      )
      .one();
    this.cleanupPending = next !== null;
    if (next !== null) await this.ctx.storage.setAlarm(Math.max(next, nowMs + CLEANUP_DELAY_MS));
  }

  private decideOne(request: DecisionRequest, batch: Batch): Verdict {
    const { deliveryId, nowMs } = request;
    const leasedUntil = batch.granted.get(deliveryId) ?? this.leases.get(deliveryId);
    if (leasedUntil !== undefined && nowMs < leasedUntil) return { verdict: 'leased' };

    const claimant = this.liveClaimant(request);
    // The delivery's own claim is no duplicate: its redelivery must be able to proceed.
    if (claimant !== null && claimant !== deliveryId)
      return { verdict: 'duplicate', firstDeliveryId: claimant };

    const rate = rateVerdict(request, this.sendsOf(batch));
    if (rate.verdict !== 'send') return rate;

    if (request.dedupeKey !== undefined && claimant === null) this.claim(request, batch);
    this.recordSend(request, batch);
    const leaseUntilMs = nowMs + LEASE_MS;
    batch.granted.set(deliveryId, leaseUntilMs);
    return { verdict: 'send', leaseUntilMs };
  }

  /** The delivery holding a live claim on the request's dedupe key, if any. */
  private liveClaimant({ channel, type, dedupeKey, nowMs }: DecisionRequest): string | null {
    if (dedupeKey === undefined) return null;
    const [row] = this.ctx.storage.sql
      .exec<{ delivery_id: string }>(
        'SELECT delivery_id FROM dedupe_claims WHERE channel = ? AND type = ? AND dedupe_key = ? AND expires_at > ?',
        channel,
        type,
        dedupeKey,
        nowMs,
      )
      .toArray();
    return row?.delivery_id ?? null;
  }

  private claim(request: DecisionRequest, batch: Batch): void {
    const expiresAt = dedupeExpiresAt(request.nowMs, request.dedupeWindowSeconds);
    // REPLACE takes over an expired claim in place: still one row.
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO dedupe_claims (channel, type, dedupe_key, delivery_id, expires_at) VALUES (?, ?, ?, ?, ?)',
      request.channel,
      request.type,
      request.dedupeKey,
      request.deliveryId,
      expiresAt,
    );
    batch.firstExpiryMs = Math.min(batch.firstExpiryMs, expiresAt);
  }

  /** Counts the send against the caps, unless no cap could ever count it (a plain webhook). */
  private recordSend(request: DecisionRequest, batch: Batch): void {
    const { deliveryId, channel, type, nowMs } = request;
    const expiresAt = sendRetainedUntil(channel, request.rateLimit, nowMs);
    if (expiresAt === null) return;
    // A redelivery replaces its own earlier send: one delivery, one slot, stamped when it went.
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO sends (delivery_id, channel, type, sent_at, expires_at) VALUES (?, ?, ?, ?, ?)',
      deliveryId,
      channel,
      type,
      nowMs,
      expiresAt,
    );
    const sends = this.sendsOf(batch).filter((send) => send.deliveryId !== deliveryId);
    sends.push({ deliveryId, channel, type, sentAtMs: nowMs });
    batch.sends = sends;
    batch.firstExpiryMs = Math.min(batch.firstExpiryMs, expiresAt);
  }

  /** The recipient's sends still retained for some window, read once per batch. */
  private sendsOf(batch: Batch): SendRecord[] {
    if (batch.sends === undefined) {
      const rows = this.ctx.storage.sql
        .exec<SendRow>(
          'SELECT delivery_id, channel, type, sent_at FROM sends WHERE expires_at > ?',
          batch.minNowMs,
        )
        .toArray();
      batch.sends = rows.flatMap(({ delivery_id, channel, type, sent_at }) =>
        isChannel(channel) ? [{ deliveryId: delivery_id, channel, type, sentAtMs: sent_at }] : [],
      );
    }
    return batch.sends;
  }

  private dropExpiredLeases(nowMs: number): void {
    for (const [deliveryId, untilMs] of this.leases) {
      if (untilMs <= nowMs) this.leases.delete(deliveryId);
    }
  }

  /** Makes sure an alarm will clean up the rows just written; one pending alarm is enough. */
  private async scheduleCleanup(firstExpiryMs: number): Promise<void> {
    if (this.cleanupPending === undefined) this.cleanupPending = (await this.ctx.storage.getAlarm()) !== null;
    if (this.cleanupPending) return;
    // The pending alarm reschedules itself for whatever is left, so later rows need no call.
    await this.ctx.storage.setAlarm(Math.max(firstExpiryMs, Date.now() + CLEANUP_DELAY_MS));
    this.cleanupPending = true;
  }
}
