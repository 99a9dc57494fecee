import { scaledDelaySeconds } from '../../domain/retry';
import type { DeliveryStatus } from '../../domain/status';
import { log } from '../../lib/log';
import type { CarriedOutcome } from '../../queue/messages';
import type { Outcome } from '../../storage/deliveries-repo';
import { byDatabase, commitAcross, databaseOf } from '../../storage/shard-router';
import type { AnsweredCounts } from '../../storage/sharded-deliveries';
import type { Services } from '../container';
import { raiseAlert } from '../operations/alerts';
import { followEscalations } from '../operations/escalation';
import { recordStatusChange } from '../operations/metrics';
import type { DeliveryBatch, Pending } from './batch';
import { cleanupStatements, spareMassPrune } from './contact-cleanup';

/** Outcomes a provider's answer settles for good: once known, never asked for again. */
const SETTLED: ReadonlySet<DeliveryStatus> = new Set(['sent', 'delivered', 'failed', 'unknown']);

/**
 * How long a carried outcome waits before the next try, by how often it has travelled: 30 s
 * doubling to an hour (shrunk by RETRY_DELAY_SCALE in local chaos runs).
 */
function carryDelaySeconds(batch: DeliveryBatch, carries: number): number {
  const seconds = Math.min(3600, 30 * 2 ** Math.min(carries, 7));
  return scaledDelaySeconds(seconds, Number(batch.services.env.RETRY_DELAY_SCALE ?? 1));
}

/** An outcome D1 refused, as it travels with its id, and how long until the next try. */
function carry(batch: DeliveryBatch, outcome: Outcome, carries: number): Pending['decision'] {
  const { deliveryId: _id, ...fields } = outcome;
  const carried: CarriedOutcome = { ...fields, carries };
  return { kind: 'carry', delaySeconds: carryDelaySeconds(batch, carries), outcome: carried };
}

/**
 * Records one provider answer at once, on its own, so nothing failing later in the batch can make
 * this delivery go out again: its row alone (one row written). What it changes (the status it
 * moves, the providers' error answers) is read in the same commit and kept on `pending` for the
 * batch's commit to count. When D1 refuses it, an answer that settles the delivery travels with
 * the id (a `carry` decision) until D1 takes it; a retry simply happens (its attempt may go
 * uncounted). An error marked fatal (the injected death of the consumer) ends the batch.
 */
export async function recordAnswer(batch: DeliveryBatch, pending: Pending): Promise<Pending> {
  if (!pending.outcome.attempted) return pending;
  const { services, now } = batch;
  await recordCaptured(batch, pending.outcome.deliveryId);
  try {
    // A provider's answer as it arrives: its error answers count even if the row refuses it.
    const results = await services.commit(services.deliveries.answerStatements(pending.outcome, now));
    pending.recorded = true;
    pending.counts = services.deliveries.answerCounts(results);
    emitStatus(batch, pending);
    await followSteps(batch, [pending]);
    await settleDigest(batch, pending);
  } catch (error) {
    if ((error as { fatal?: unknown }).fatal === true) throw error;
    log('error', 'delivery.record_failed', {
      deliveryId: pending.outcome.deliveryId,
      channel: batch.channel,
      status: pending.outcome.status,
      error: String(error),
    });
    if (SETTLED.has(pending.outcome.status)) pending.decision = carry(batch, pending.outcome, 0);
  }
  return pending;
}

/**
 * Step 10: the APNs mass-prune guard, then one commit per database of every outcome not recorded
 * yet (no provider was asked: suppressed, deferred, duplicate, a travelling answer), the contact
 * clean-ups, and the counts of the answers recorded on their own (one statement per database with
 * the outcomes' count: one row written per type). If D1 refuses a database's commit, no outcome is
 * lost: a travelling answer travels on, the others are decided again later; the answers' counts of
 * that database are tried once more alone (`countAnswersAlone`).
 */
export async function recordBatch(batch: DeliveryBatch): Promise<void> {
  const { services, channel, now } = batch;
  if (spareMassPrune(channel, batch.pending)) {
    await raiseAlert(
      services,
      'apns-bad-device-token-batch',
      'APNs answered BadDeviceToken for every token of a batch: check APNS_ENVIRONMENT (sandbox/production) and APNS_TOPIC; tokens were kept',
    );
  }
  const unrecorded = [...batch.pending.values()].filter((p) => !p.recorded && p.decision.kind !== 'carry');
  const answered: AnsweredCounts[] = [...batch.pending.values()].flatMap((p) =>
    p.counts?.length ? [{ deliveryId: p.outcome.deliveryId, counts: p.counts }] : [],
  );
  // The databases whose commit D1 refused; null when nothing could be committed at all.
  let refused: Map<D1Database, unknown> | null = null;
  try {
    // Inside the try: nothing failing here may throw away the decisions of answers already in.
    const statements = [
      ...services.deliveries.outcomeStatements(
        unrecorded.map((p) => p.outcome),
        now,
        { answered },
      ),
      ...(await cleanupStatements(
        services,
        [...batch.pending.values()].flatMap((p) => (p.cleanup ? [p.cleanup] : [])),
        batch.contacts,
        now,
      )),
    ];
    refused = await commitPerDatabase(services, statements);
    if (refused.size > 0) throw [...refused.values()][0];
    for (const p of unrecorded) emitStatus(batch, p);
    await followSteps(batch, unrecorded);
  } catch (error) {
    if ((error as { fatal?: unknown }).fatal === true) throw error;
    log('error', 'delivery.batch_record_failed', { channel, count: unrecorded.length, error: String(error) });
    for (const p of unrecorded) p.decision = undecided(batch, p);
  }
  await countAnswersAlone(batch, answered, refused);
  for (const [id, p] of batch.pending) batch.decisions.set(id, p.decision);
}

/**
 * Commits statements as one batch per database, each on its own (one refused does not keep the
 * others from being written): the databases that refused, with the error. A fatal error (the
 * injected death of the consumer) is thrown at once.
 */
async function commitPerDatabase(
  services: Services,
  statements: readonly D1PreparedStatement[],
): Promise<Map<D1Database, unknown>> {
  const refused = new Map<D1Database, unknown>();
  for (const [db, list] of byDatabase(statements, services.router.home.db)) {
    try {
      await services.commit(list);
    } catch (error) {
      if ((error as { fatal?: unknown }).fatal === true) throw error;
      refused.set(db, error);
    }
  }
  return refused;
}

/**
 * D1's transient errors after which a write may have landed all the same (its documented
 * retryable ones: the connection or the database's object lost during the call). Counts added
 * again after one of them could count twice: they are given up instead.
 */
const MAY_HAVE_LANDED =
  /Network connection lost|storage caused object to be reset|reset because its code was updated|internal error/i;

/**
 * The counts of the answers recorded on their own whose database refused the batch's commit (every
 * database's when nothing could be committed), tried once more, alone. Lost when that fails too,
 * or when the refusal may have been written after all (a count is never added twice; and nothing
 * else counts these answers again: their rows are final, or moved on); `metrics.counts_lost` says
 * how many.
 */
async function countAnswersAlone(
  batch: DeliveryBatch,
  answered: readonly AnsweredCounts[],
  refused: ReadonlyMap<D1Database, unknown> | null,
): Promise<void> {
  if (refused?.size === 0 || answered.length === 0) return;
  const { services, channel } = batch;
  for (const part of services.deliveries.answeredCountStatements(answered)) {
    const db = databaseOf(part.statement, services.router.home.db);
    if (refused && !refused.has(db)) continue;
    const lost = { channel, answers: part.answers, counts: part.counts };
    const first = refused?.get(db);
    if (first !== undefined && MAY_HAVE_LANDED.test(String(first))) {
      log('error', 'metrics.counts_lost', { ...lost, mayHaveLanded: true, error: String(first) });
      continue;
    }
    try {
      await services.commit([part.statement]);
    } catch (error) {
      if ((error as { fatal?: unknown }).fatal === true) throw error;
      log('error', 'metrics.counts_lost', { ...lost, error: String(error) });
    }
  }
}

/** What happens to a delivery whose outcome D1 refused: a travelling answer travels on; the rest waits. */
function undecided(batch: DeliveryBatch, p: Pending): Pending['decision'] {
  const carried = batch.carried.get(p.outcome.deliveryId);
  if (carried) return carry(batch, p.outcome, carried.carries + 1);
  return p.decision.kind === 'done' || p.decision.kind === 'dead'
    ? { kind: 'wait', delaySeconds: carryDelaySeconds(batch, 0) }
    : p.decision;
}

/** A digest that went out: its other items say which delivery carried them. */
async function settleDigest(batch: DeliveryBatch, pending: Pending): Promise<void> {
  const items = batch.digests.get(pending.outcome.deliveryId);
  if (!items || !['sent', 'delivered', 'unknown'].includes(pending.outcome.status)) return;
  try {
    await batch.services.deliveries.digestedInto(items, pending.outcome.deliveryId, batch.now);
  } catch (error) {
    log('error', 'digest.settle_failed', { deliveryId: pending.outcome.deliveryId, error: String(error) });
  }
}

/** What the recorded outcomes of escalation steps mean for their later steps (only steps are read). */
async function followSteps(batch: DeliveryBatch, recorded: readonly Pending[]): Promise<void> {
  const steps = recorded.filter((p) => batch.loaded.get(p.outcome.deliveryId)?.escalation);
  await followEscalations(
    batch.services,
    steps.map((p) => ({ deliveryId: p.outcome.deliveryId, status: p.outcome.status })),
  );
}

/** One Analytics Engine data point per status change. */
function emitStatus(batch: DeliveryBatch, p: Pending): void {
  const delivery = batch.loaded.get(p.outcome.deliveryId);
  if (!delivery) return;
  recordStatusChange(batch.services.env, {
    deliveryId: delivery.id,
    notificationId: delivery.notificationId,
    channel: batch.channel,
    type: delivery.type,
    status: p.outcome.status,
    provider: p.outcome.provider ?? null,
  });
}

/**
 * What the sandbox captured for one delivery goes to its outbox at once, apart from the outcome
 * (as a real provider's own record would be): whatever happens to the consumer afterwards, what
 * went out stays visible.
 */
async function recordCaptured(batch: DeliveryBatch, deliveryId: string): Promise<void> {
  const mine = batch.captured.filter((request) => request.deliveryId === deliveryId);
  if (mine.length === 0) return;
  const { services, channel, now } = batch;
  // The sandbox's own record: if D1 refuses it, the send still happened; say so and go on.
  await commitAcross(
    mine.map((request) =>
      services.outbox.insertStatement(
        {
          deliveryId: request.deliveryId,
          notificationId: request.notificationId,
          userId: batch.loaded.get(request.deliveryId)?.userId ?? null,
          channel,
          address: request.address,
          message: request.message,
        },
        now,
      ),
    ),
    services.router.home.db,
  ).catch((error: unknown) => log('error', 'outbox.record_failed', { deliveryId, error: String(error) }));
}
