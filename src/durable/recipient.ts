import { DurableObject } from 'cloudflare:workers';
import { isChannel } from '../domain/channels';
import {
  DEFAULT_RATE_LIMITS,
  type DecisionRequest,
  type DeliveryOutcome,
  dedupeExpiresAt,
  LEASE_MS,
  type RateLimit,
  rateScopeOf,
  rateVerdict,
  type SendRecord,
  sendRetainedUntil,
  type Verdict,
} from '../domain/recipient-rules';

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

type SendRow = { delivery_id: string; channel: string; type: string; sent_at: number; expires_at: number };

/** A counted send as the instance holds it. */
interface HeldSend extends SendRecord {
  /** Until when some cap can still count it; past that it is dropped. */
  readonly expiresAtMs: number;
  /** Whether its row is in `sends`, so that an eviction cannot make the object forget it. */
  readonly written: boolean;
}

/** What one `decide` call accumulates before it commits. */
interface Batch {
  /**
   * A copy of the recipient's live sends (deliveryId -> send) that the batch records into; it
   * replaces the instance's only once the batch's writes committed.
   */
  readonly sends: Map<string, HeldSend>;
  /** Leases granted in this batch, published only once the batch's writes committed. */
  readonly granted: Map<string, number>;
  /** Earliest expiry among rows written, which the cleanup alarm must cover. */
  firstExpiryMs: number;
}

/**
 * Whether `request`'s send, already in `sends`, brings a cap that counts it to at least half its
 * limit in its window: the channel default (which counts every type on the channel) or the
 * request's own override (which counts only its type). So a cap of 1 or 2 is written from its
 * first send, and a burst from half the cap on.
 */
function reachesHalfACap(request: DecisionRequest, sends: readonly SendRecord[]): boolean {
  const caps: { limit: RateLimit; perType: boolean }[] = [];
  const channelDefault = DEFAULT_RATE_LIMITS[request.channel];
  if (channelDefault) caps.push({ limit: channelDefault, perType: false });
  if (request.rateLimit) caps.push({ limit: request.rateLimit, perType: true });
  return caps.some(({ limit, perType }) => {
    const windowMs = limit.windowSeconds * 1000;
    let counted = 0;
    for (const send of sends) {
      if (
        send.channel === request.channel &&
        (!perType || send.type === request.type) &&
        request.nowMs < send.sentAtMs + windowMs
      )
        counted += 1;
    }
    return 2 * counted >= limit.limit;
  });
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
 * - Dedupe claims (SQLite): one row per delivery that carries a `dedupeKey`, kept for its whole
 *   window, since an evicted object that forgot one would let the twin through. That is the only
 *   row the happy path writes.
 * - Counted sends (memory first, SQLite near a cap): the performance budget allows no storage
 *   write per happy-path delivery unless it needs a dedupe record. A row written here costs as
 *   much as the D1 row the delivery already writes; one row per counted send came to 0.8 rows per
 *   delivery, $0.80 per million plus their deletion. So sends are counted in memory, loaded from
 *   `sends` on the first `decide` (rows written by an earlier instance still count). A send is
 *   written, together with every send still only in memory, only when, counting it, a cap that
 *   counts it (the channel default or the type's override) has used at least half its limit in
 *   its window.
 *   The trade: the object is evicted after some idle time, and sends that were only in memory are
 *   forgotten with it, so a slow trickle (about one send per idle period) is counted only while
 *   the object lives and can get past a cap. Caps of 1 and 2 are exact (their first send is half
 *   of them), and a burst is durable from half its cap on, so many messages in a short time, the
 *   case a cap exists for, are still counted after an eviction.
 *
 * Nothing is written for a delivery that is leased, deduped, deferred or dropped, nor on
 * `complete` for a delivery that was sent.
 */
export class Recipient extends DurableObject<unknown> {
  /** deliveryId -> end of its lease (ms). Expired entries are dropped lazily. */
  private readonly leases = new Map<string, number>();
  /**
   * deliveryId -> counted send still retained for some window: every row of `sends` plus the sends
   * only held here. Undefined until the first `decide` loads it; expired entries are dropped lazily.
   */
  private sends: Map<string, HeldSend> | undefined;
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
    const minNowMs = Math.min(...requests.map((request) => request.nowMs));
    this.dropExpiredLeases(minNowMs);
    const batch: Batch = {
      sends: new Map(this.liveSends(minNowMs)),
      granted: new Map(),
      firstExpiryMs: Number.POSITIVE_INFINITY,
    };
    // One transaction: either every verdict's rows are written or, on a throw, none are; memory
    // takes the batch's sends and leases only after it committed.
    const verdicts = this.ctx.storage.transactionSync(() =>
      requests.map((request) => this.decideOne(request, batch)),
    );
    this.sends = batch.sends;
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
      const held = this.sends?.get(deliveryId);
      this.sends?.delete(deliveryId);
      // A send known to be only in memory has no row; a written or unknown one may have one.
      if (held?.written !== false) sql.exec('DELETE FROM sends WHERE delivery_id = ?', deliveryId);
      // Guarded by delivery id, so a claim that already passed to a twin is left alone.
      sql.exec('DELETE FROM dedupe_claims WHERE delivery_id = ?', deliveryId);
    }
    if (results.length > 0) this.dropExpiredLeases(Math.min(...results.map((result) => result.nowMs)));
  }

  /**
   * Deletes expired claims and sends, then sleeps until the next row expires; with nothing left,
   * no alarm is set, so an idle recipient costs nothing. Sends held in memory are dropped lazily,
   * by the next `decide` after they expire.
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

    const rate = rateVerdict(request, [...batch.sends.values()]);
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

  /**
   * Counts the send against the caps, unless no cap could ever count it (a plain webhook): in
   * memory, and in `sends` too, along with every send still only in memory, once it brings a cap
   * to half its limit.
   */
  private recordSend(request: DecisionRequest, batch: Batch): void {
    const { deliveryId, channel, type, nowMs } = request;
    const expiresAtMs = sendRetainedUntil(channel, request.rateLimit, nowMs);
    if (expiresAtMs === null) return;
    const earlier = batch.sends.get(deliveryId);
    // A redelivery replaces its own earlier send: one delivery, one slot, stamped when it went.
    const send: HeldSend = { deliveryId, channel, type, sentAtMs: nowMs, expiresAtMs, written: false };
    batch.sends.set(deliveryId, send);
    const held = [...batch.sends.values()];
    let toWrite: HeldSend[];
    if (reachesHalfACap(request, held)) {
      toWrite = held.filter((other) => !other.written && nowMs < other.expiresAtMs);
    } else {
      // An earlier row of this delivery is brought up to date rather than left with a stale stamp.
      toWrite = earlier?.written ? [send] : [];
    }
    for (const row of toWrite) {
      this.ctx.storage.sql.exec(
        'INSERT OR REPLACE INTO sends (delivery_id, channel, type, sent_at, expires_at) VALUES (?, ?, ?, ?, ?)',
        row.deliveryId,
        row.channel,
        row.type,
        row.sentAtMs,
        row.expiresAtMs,
      );
      batch.sends.set(row.deliveryId, { ...row, written: true });
      batch.firstExpiryMs = Math.min(batch.firstExpiryMs, row.expiresAtMs);
    }
  }

  /**
   * The recipient's sends still retained at `nowMs`: read from `sends` once in the instance's
   * life, then kept in memory.
   */
  private liveSends(nowMs: number): Map<string, HeldSend> {
    if (this.sends === undefined) {
      this.sends = new Map();
      const rows = this.ctx.storage.sql
        .exec<SendRow>('SELECT delivery_id, channel, type, sent_at, expires_at FROM sends')
        .toArray();
      for (const { delivery_id, channel, type, sent_at, expires_at } of rows) {
        if (!isChannel(channel)) continue;
        this.sends.set(delivery_id, {
          deliveryId: delivery_id,
          channel,
          type,
          sentAtMs: sent_at,
          expiresAtMs: expires_at,
          written: true,
        });
      }
    }
    for (const [deliveryId, send] of this.sends) {
      if (send.expiresAtMs <= nowMs) this.sends.delete(deliveryId);
    }
    return this.sends;
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
