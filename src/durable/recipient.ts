import { DurableObject } from 'cloudflare:workers';
import {
  type DecisionRequest,
  type DeliveryOutcome,
  dedupeExpiresAt,
  dedupeVerdict,
  LEASE_MS,
  rateScopeOf,
  rateVerdict,
  sendRetainedUntil,
  type Verdict,
} from '../domain/recipient-rules';
import { log } from '../lib/log';
import {
  addStepTimers,
  allDigests,
  createDigestSchema,
  createStepSchema,
  type DigestItem,
  deleteDigest,
  deleteStepTimers,
  dueStepTimers,
  nextClose,
  nextStepDue,
  type OpenDigest,
  readDigest,
  type StepTimer,
  writeDigest,
} from './digest-storage';
import {
  claimKey,
  type HeldSend,
  pruneState,
  type RecipientState,
  releaseDelivery,
  sendKey,
  withDelivery,
} from './recipient-state';
import { createSchema, readState, writeState } from './recipient-storage';

/** A delivery folding into a digest; `key` names the digest (type, channel, rendered key). */
export interface FoldRequest {
  key: string;
  channel: string;
  deliveryId: string;
  notificationId: string;
  /** When the window closes, for a digest this delivery opens. */
  closesAtMs: number;
  maxItems: number;
  sendFirst: boolean;
  nowMs: number;
}

export type FoldVerdict =
  | { verdict: 'send' }
  | { verdict: 'held'; closesAtMs: number }
  | { verdict: 'release'; items: DigestItem[] };

/** How soon a digest whose hand-over failed is tried again. */
const DIGEST_RETRY_MS = 30_000;

/**
 * `FAULT_EVICT_RATE` (0..1, development and test only): the share of calls before which the object
 * drops everything it holds in memory, as an eviction would, so that the call reads from storage.
 */
function faultEvictRate(env: unknown): number {
  const vars = (typeof env === 'object' && env !== null ? env : {}) as Record<string, unknown>;
  if (vars.ENVIRONMENT !== 'development' && vars.ENVIRONMENT !== 'test') return 0;
  const raw = vars.FAULT_EVICT_RATE;
  const given = typeof raw === 'number' || (typeof raw === 'string' && raw.trim() !== '');
  const rate = given ? Number(raw) : Number.NaN;
  return Number.isFinite(rate) && rate >= 0 && rate <= 1 ? rate : 0;
}

/**
 * One per recipient (`idFromName(userId)`): decides, for each delivery a queue consumer is about
 * to send, whether it may go now, and hears back about the ones that were not sent.
 *
 * Its whole state is one SQLite row (`recipient-storage.ts`, compact JSON of `recipient-state.ts`):
 * - Counted sends: one per notification and channel, with the deliveries that went under it, kept
 *   while a cap can count it. Every delivery of a notification on a channel shares its slot: once
 *   the first may go, its siblings (other devices, chat channels, a redelivery) go too.
 * - Dedupe claims: one per (channel, type, key), naming the notification that made it; all of that
 *   notification's deliveries pass, a twin from another notification is `duplicate`.
 * - Leases: a delivery told `send` is held for {@link LEASE_MS}, so a duplicate queue message
 *   handled by another consumer meanwhile gets `leased`.
 * Memory holds a copy of the row, read on the first call after a start; it is never the only copy
 * of a send, a claim or a lease under a cap or a dedupe key, so eviction and deploys forget none.
 *
 * Writes: a `decide` call writes the row once (1 row written), and only when it let through a
 * delivery that a cap counts or that carries a dedupe key; it prunes expired entries as it
 * writes, so no cleanup alarm is needed. Nothing is written for leased, duplicate, deferred or
 * dropped deliveries, nor by `complete` for sent ones; `complete` writes the row once when it gives
 * back a slot or a claim of a delivery that was not sent.
 * The exception, kept in memory only: the lease of a delivery that no cap counts and that has no
 * dedupe key (a webhook without a type cap), granted in a call that writes nothing else. An
 * eviction forgets it, and a redelivery may then be sent again; the delivery id is the provider's
 * idempotency key there (`webhook-id`), which makes that harmless. Likewise a lease released by
 * `complete` stays in the stored row until the next write, so after an eviction it may hold back a
 * redelivery until it lapses (2 minutes at most), never let one through.
 *
 * The row grows with the live entries: about 125 bytes per counted send or dedupe claim, 50 per
 * lease, all serialized again on each write. SQLite rows are limited to 2 MB, so a recipient holding
 * some 16,000 live dedupe claims (distinct keys within their windows) would reach it.
 */
export class Recipient extends DurableObject<unknown> {
  /** The stored row, as read on the first call after a start and kept current after each write. */
  private state: RecipientState | undefined;
  private readonly evictRate: number;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    createSchema(ctx.storage.sql);
    createDigestSchema(ctx.storage.sql);
    createStepSchema(ctx.storage.sql);
    this.evictRate = faultEvictRate(env);
  }

  /**
   * Folds deliveries into their open digests, one at a time (the object serializes every call,
   * so two consumers folding at once make one digest). Per request: `send` (the first of a window
   * with sendFirst, which goes alone), `held` (until the window closes), or `release` with the
   * digest's items (it reached maxItems: this delivery carries them now).
   */
  async fold(requests: FoldRequest[]): Promise<FoldVerdict[]> {
    const sql = this.ctx.storage.sql;
    const verdicts = requests.map((request): FoldVerdict => {
      const open = readDigest(sql, request.key);
      const item = {
        deliveryId: request.deliveryId,
        notificationId: request.notificationId,
        atMs: request.nowMs,
      };
      if (open?.items.some((i) => i.deliveryId === request.deliveryId))
        return { verdict: 'held', closesAtMs: open.closesAtMs };
      const closesAtMs = open?.closesAtMs ?? request.closesAtMs;
      if (!open && request.sendFirst) {
        writeDigest(sql, { key: request.key, channel: request.channel, items: [], closesAtMs });
        return { verdict: 'send' };
      }
      const items = [...(open?.items ?? []), item];
      if (items.length >= request.maxItems) {
        deleteDigest(sql, request.key);
        return { verdict: 'release', items };
      }
      writeDigest(sql, { key: request.key, channel: request.channel, items, closesAtMs });
      return { verdict: 'held', closesAtMs };
    });
    await this.armDigestAlarm();
    return verdicts;
  }

  /**
   * Keeps the timers of later escalation steps (their rows wait `scheduled` in D1): each is handed
   * to `releaseSteps` when due, by this object's alarm. A repeat of a timer changes nothing.
   */
  async schedule(timers: StepTimer[]): Promise<void> {
    addStepTimers(this.ctx.storage.sql, timers);
    await this.armDigestAlarm();
  }

  /** The open digests (an operator's view). */
  async openDigests(): Promise<OpenDigest[]> {
    return allDigests(this.ctx.storage.sql);
  }

  /**
   * Closes the open digests these keys name now, as their windows' end would (an operator's
   * flush); the keys closed. One whose hand-over fails stays open for the alarm to try again.
   */
  async flush(keys: readonly string[]): Promise<string[]> {
    const closed: string[] = [];
    for (const digest of allDigests(this.ctx.storage.sql)) {
      if (!keys.includes(digest.key)) continue;
      if (digest.items.length > 0) await this.releaseDigest(digest);
      deleteDigest(this.ctx.storage.sql, digest.key);
      closed.push(digest.key);
    }
    return closed;
  }

  /**
   * Verdicts for one recipient's deliveries of a queue batch, in order; earlier requests of the
   * batch count against later ones. Throws a RangeError, writing nothing, when a request carries a
   * malformed rate limit or dedupe window.
   */
  async decide(requests: DecisionRequest[]): Promise<Verdict[]> {
    this.injectEviction();
    if (requests.length === 0) return [];
    for (const request of requests) {
      rateScopeOf(request.channel, request.rateLimit);
      dedupeExpiresAt(request.nowMs, request.dedupeWindowSeconds);
    }
    const state = this.loaded(Math.min(...requests.map((request) => request.nowMs)));
    try {
      const call = { write: false };
      const verdicts = requests.map((request) => this.decideOne(state, request, call));
      if (call.write) writeState(this.ctx.storage.sql, state);
      return verdicts;
    } catch (error) {
      // Memory may be ahead of the row: read the row again next time.
      this.state = undefined;
      throw error;
    }
  }

  /**
   * Releases the leases of deliveries the consumer is done with. A delivery that was not sent
   * gives back its notification's slot and dedupe claim when no other delivery of the
   * notification went under them, so its retry (or a twin) may go later.
   */
  async complete(results: DeliveryOutcome[]): Promise<void> {
    this.injectEviction();
    if (results.length === 0) return;
    // A sent delivery only ends its lease in memory: nothing to read or write for it.
    if (results.every((result) => result.sent)) {
      for (const { deliveryId } of results) this.state?.leases.delete(deliveryId);
      return;
    }
    const state = this.loaded(Math.min(...results.map((result) => result.nowMs)));
    let changed = false;
    try {
      for (const { deliveryId, sent } of results) {
        state.leases.delete(deliveryId);
        if (!sent) changed = releaseDelivery(state, deliveryId) || changed;
      }
      if (changed) writeState(this.ctx.storage.sql, state);
    } catch (error) {
      this.state = undefined;
      throw error;
    }
  }

  /**
   * Earlier versions set a cleanup alarm; one may still fire once. It reads the state, which folds
   * in the rows of that layout, and sets no other.
   */
  override async alarm(): Promise<void> {
    this.loaded(Date.now());
    await this.releaseDueSteps(Date.now());
    await this.closeDueDigests(Date.now());
  }

  /** Hands the due escalation steps over; they leave storage only once handed over. */
  private async releaseDueSteps(nowMs: number): Promise<void> {
    const due = dueStepTimers(this.ctx.storage.sql, nowMs);
    if (due.length === 0) return;
    try {
      await this.releaseSteps(due);
      deleteStepTimers(
        this.ctx.storage.sql,
        due.map((t) => t.deliveryId),
      );
    } catch (error) {
      log('error', 'escalation.release_failed', { steps: due.length, error: String(error) });
      await this.ctx.storage.setAlarm(nowMs + DIGEST_RETRY_MS);
    }
  }

  /** Sends due escalation steps to their queues; the Worker's subclass does it (src/index.ts). */
  protected async releaseSteps(_timers: StepTimer[]): Promise<void> {
    throw new Error('no escalation release configured');
  }

  /**
   * Closes every digest whose window has ended: each goes to `releaseDigest` (the Worker sends its
   * carrier) and only then leaves storage, so a failed hand-over is tried again by the next alarm.
   */
  private async closeDueDigests(nowMs: number): Promise<void> {
    for (const digest of allDigests(this.ctx.storage.sql)) {
      if (digest.closesAtMs > nowMs) continue;
      try {
        if (digest.items.length > 0) await this.releaseDigest(digest);
        deleteDigest(this.ctx.storage.sql, digest.key);
      } catch (error) {
        log('error', 'digest.release_failed', { items: digest.items.length, error: String(error) });
        await this.ctx.storage.setAlarm(nowMs + DIGEST_RETRY_MS);
        return;
      }
    }
    await this.armDigestAlarm();
  }

  /** The alarm at the next digest close or escalation step, whichever comes first. */
  private async armDigestAlarm(): Promise<void> {
    const times = [nextClose(this.ctx.storage.sql), nextStepDue(this.ctx.storage.sql)].filter(
      (t): t is number => t !== null,
    );
    if (times.length === 0) return;
    const next = Math.min(...times);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  /** Hands a closed digest over to be sent; the Worker's subclass does it (src/index.ts). */
  protected async releaseDigest(_digest: OpenDigest): Promise<void> {
    throw new Error('no digest release configured');
  }

  private decideOne(state: RecipientState, request: DecisionRequest, call: { write: boolean }): Verdict {
    const { deliveryId, nowMs } = request;
    const leasedUntil = state.leases.get(deliveryId);
    if (leasedUntil !== undefined && nowMs < leasedUntil) return { verdict: 'leased' };

    const { dedupeKey } = request;
    const key = dedupeKey === undefined ? undefined : claimKey(request.channel, request.type, dedupeKey);
    const claim = key === undefined ? undefined : state.claims.get(key);
    const duplicate = dedupeVerdict(request, claim);
    if (duplicate) return duplicate;

    const own = ownSend(state, request);
    if (!own) {
      const rate = rateVerdict(request, [...state.sends.values()]);
      if (rate.verdict !== 'send') return rate;
    }

    if (key !== undefined && dedupeKey !== undefined) {
      const live = claim && claim.expiresAtMs > nowMs ? claim : undefined;
      state.claims.set(key, {
        channel: request.channel,
        type: request.type,
        dedupeKey,
        notificationId: live?.notificationId ?? request.notificationId,
        expiresAtMs: live?.expiresAtMs ?? dedupeExpiresAt(nowMs, request.dedupeWindowSeconds),
        deliveryIds: withDelivery(live?.deliveryIds ?? [], deliveryId),
      });
    }
    const counted = countSend(state, request, own);
    const leaseUntilMs = nowMs + LEASE_MS;
    state.leases.set(deliveryId, leaseUntilMs);
    if (key !== undefined || counted) call.write = true;
    return { verdict: 'send', leaseUntilMs };
  }

  /** The state, read from storage on the first call after a start, pruned at `nowMs`. */
  private loaded(nowMs: number): RecipientState {
    this.state ??= readState(this.ctx.storage, nowMs);
    pruneState(this.state, nowMs);
    return this.state;
  }

  private injectEviction(): void {
    if (this.evictRate > 0 && Math.random() < this.evictRate) {
      this.state = undefined;
      log('warn', 'fault.injected', { fault: 'InjectedEviction' });
    }
  }
}

/**
 * The live send the request's notification (or, for a send stored by an earlier layout, the
 * delivery itself) already has on the request's channel.
 */
function ownSend(state: RecipientState, request: DecisionRequest): [string, HeldSend] | undefined {
  const { notificationId, deliveryId, channel, nowMs } = request;
  const key = sendKey(notificationId, channel);
  const byNotification = state.sends.get(key);
  const found: [string, HeldSend] | undefined = byNotification
    ? [key, byNotification]
    : [...state.sends].find(([, send]) => send.channel === channel && send.deliveryIds.includes(deliveryId));
  return found && found[1].retainedUntilMs > nowMs ? found : undefined;
}

/**
 * Counts the send against the caps, unless no cap could ever count it (a plain webhook): a new
 * slot, or the notification's own slot on the channel, stamped with its latest send. Whether a
 * cap counts it.
 */
function countSend(
  state: RecipientState,
  request: DecisionRequest,
  own: [string, HeldSend] | undefined,
): boolean {
  const { notificationId, deliveryId, channel, type, nowMs } = request;
  const retainedUntilMs = sendRetainedUntil(channel, request.rateLimit, nowMs);
  if (retainedUntilMs === null) return false;
  if (own) {
    const [key, send] = own;
    state.sends.set(key, {
      ...send,
      sentAtMs: Math.max(send.sentAtMs, nowMs),
      retainedUntilMs: Math.max(send.retainedUntilMs, retainedUntilMs),
      deliveryIds: withDelivery(send.deliveryIds, deliveryId),
    });
  } else {
    state.sends.set(sendKey(notificationId, channel), {
      notificationId,
      channel,
      type,
      sentAtMs: nowMs,
      retainedUntilMs,
      deliveryIds: [deliveryId],
    });
  }
  return true;
}
