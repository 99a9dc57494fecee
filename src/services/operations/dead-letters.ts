import type { Channel } from '../../domain/channels';
import type { Delivery } from '../../domain/delivery';
import { AppError } from '../../domain/errors';
import { groupBy } from '../../lib/collections';
import { log } from '../../lib/log';
import type { CarriedOutcome, QueueMessage } from '../../queue/messages';
import { sendToQueue } from '../../queue/producer';
import type { Outcome } from '../../storage/deliveries-repo';
import type { Services } from '../container';
import { raiseAlert } from './alerts';
import { followEscalations } from './escalation';
import { recordStatusChangesById } from './metrics';

/** What one dead-lettered delivery comes to: its outcome and dead letter, and whether it failed here. */
interface DeadLetterWrite {
  outcome?: Outcome;
  deadLetter?: D1PreparedStatement;
  failedHere: boolean;
}

function deadLetterWrite(
  services: Services,
  channel: Channel,
  d: Delivery,
  answer: CarriedOutcome | undefined,
  now: number,
): DeadLetterWrite {
  const stillOpen = d.status === 'created' || d.status === 'queued' || d.status === 'deferred';
  if (stillOpen && answer && answer.status !== 'queued' && answer.status !== 'deferred') {
    // A provider's answer D1 could not take travelled with the id: it is the truth, not a dead
    // letter (a `sent` one must never be replayed). Only a carried `failed` stays replayable.
    const { carries: _carries, ...carried } = answer;
    const outcome = { ...carried, deliveryId: d.id };
    if (answer.status !== 'failed') return { outcome, failedHere: false };
    const deadLetter = services.operations.recordDeadLetterStatement(
      d.id,
      channel,
      answer.reason ?? null,
      now,
    );
    return { outcome, deadLetter, failedHere: true };
  }
  if (!stillOpen && d.status !== 'failed') return { failedHere: false };
  const last = answer?.reason ?? d.reason;
  const reason = stillOpen ? `dead-lettered: ${last ?? 'delivery attempts kept failing'}` : d.reason;
  const deadLetter = services.operations.recordDeadLetterStatement(d.id, channel, reason, now);
  if (!stillOpen) return { deadLetter, failedHere: false };
  const outcome = {
    deliveryId: d.id,
    status: 'failed' as const,
    reason: reason ?? undefined,
    attempted: false,
  };
  return { outcome, deadLetter, failedHere: true };
}

/**
 * Handles what reached a channel's dead-letter queue: the delivery ends `failed` with its last
 * error (a consumer that crashed repeatedly leaves none, so one is given), is kept replayable in
 * `dead_letters`, and an alert is raised (one digest a minute, however many arrive). A provider
 * answer the message carried (D1 refused it when it came) is recorded as it is instead. Throws
 * when D1 cannot be written: the consumer then retries the messages, never acks them unrecorded.
 */
export async function recordDeadLetters(
  services: Services,
  channel: Channel,
  messages: QueueMessage[],
): Promise<void> {
  const now = services.now();
  const ids = [...new Set(messages.flatMap((m) => m.deliveryIds))];
  const carried = new Map(messages.flatMap((m) => Object.entries(m.outcomes ?? {})));
  const loaded = await services.deliveries.getDeliveries(ids);
  const results = loaded.map((d) => ({
    d,
    ...deadLetterWrite(services, channel, d, carried.get(d.id), now),
  }));
  // The outcomes with the statement counting them, then the dead letters: one batch per database.
  await services.commit([
    ...services.deliveries.outcomeStatements(
      results.flatMap((r) => (r.outcome ? [r.outcome] : [])),
      now,
    ),
    ...results.flatMap((r) => (r.deadLetter ? [r.deadLetter] : [])),
  ]);
  const failed = results
    .filter((r) => r.failedHere)
    .map((r) => ({ deliveryId: r.d.id, status: 'failed' as const }));
  await recordStatusChangesById(services, failed);
  // An escalation step whose attempts are spent brings the next step forward.
  await followEscalations(services, failed);
  const dead = results.filter((r) => r.deadLetter).length;
  log('error', 'delivery.dead_lettered', { channel, count: ids.length, deadLettered: dead });
  if (dead === 0) return;
  await raiseAlert(
    services,
    `dead-letters:${channel}`,
    `${dead} ${channel} deliveries reached the dead-letter queue`,
  );
}

/**
 * Re-enqueues dead letters with fresh attempts: by ids, or every one of a channel. Returns the ids
 * replayed (enqueued). Each dead letter is claimed atomically with the reset of its delivery, so two
 * replays at once enqueue it once; a delivery that has since been sent or replayed is left alone.
 * What the queue refuses goes back to `failed` with its dead letter replayable again.
 */
export async function replayDeadLetters(
  services: Services,
  selection: { ids?: string[]; channel?: Channel },
): Promise<string[]> {
  const ops = services.operations;
  let ids = selection.ids;
  if (!ids) {
    if (!selection.channel)
      throw new AppError(422, 'validation_error', 'give ids or a channel', [
        { field: 'ids', message: 'required without channel' },
      ]);
    ids = (await ops.listDeadLetters(selection.channel, 1000)).map((d) => d.deliveryId);
  }
  const candidates = [...new Set(ids)];
  if (candidates.length === 0) return [];
  const now = services.now();
  const claimed = await ops.claimForReplay(candidates, selection.channel, now, (claimedAt, group) =>
    services.deliveries.resetForReplayStatements(group, claimedAt, now),
  );
  const queued: string[] = [];
  const refused: string[] = [];
  for (const [channel, list] of groupBy(claimed, (d) => d.channel)) {
    const deliveryIds = list.map((d) => d.id);
    const { sent, unsent } = await sendToQueue(
      services.env,
      channel,
      [{ deliveryIds, attempt: 0 }],
      'replay',
    );
    queued.push(...sent);
    refused.push(...unsent);
  }
  if (refused.length > 0) {
    await services.commit([
      ...services.deliveries.failUnsentReplayStatements(refused, now),
      ...ops.unclaimReplayStatements(refused, now),
    ]);
    log('warn', 'replay.refused', { count: refused.length });
  }
  if (queued.length > 0) await services.deliveries.markQueued(queued, now);
  return queued;
}
