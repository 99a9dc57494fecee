import type { Channel } from '../../domain/channels';
import type { Delivery } from '../../domain/delivery';
import { AppError } from '../../domain/errors';
import { groupBy } from '../../lib/collections';
import { log } from '../../lib/log';
import type { CarriedOutcome, QueueMessage } from '../../queue/messages';
import { sendToQueue } from '../../queue/producer';
import type { Services } from '../container';
import { raiseAlert } from './alerts';
import { followEscalations } from './escalation';
import { recordStatusChangesById } from './metrics';

/** What one dead-lettered delivery comes to: the statements to run, and whether it failed here. */
function deadLetterStatements(
  services: Services,
  channel: Channel,
  d: Delivery,
  answer: CarriedOutcome | undefined,
  now: number,
): { statements: D1PreparedStatement[]; failedHere: boolean; deadLettered: boolean } {
  const stillOpen = d.status === 'created' || d.status === 'queued' || d.status === 'deferred';
  if (stillOpen && answer && answer.status !== 'queued' && answer.status !== 'deferred') {
    // A provider's answer D1 could not take travelled with the id: it is the truth, not a dead
    // letter (a `sent` one must never be replayed). Only a carried `failed` stays replayable.
    const { carries: _carries, ...outcome } = answer;
    const statements = [services.deliveries.outcomeStatement({ ...outcome, deliveryId: d.id }, now)];
    if (answer.status !== 'failed') return { statements, failedHere: false, deadLettered: false };
    statements.push(services.operations.recordDeadLetterStatement(d.id, channel, answer.reason ?? null, now));
    return { statements, failedHere: true, deadLettered: true };
  }
  if (!stillOpen && d.status !== 'failed') return { statements: [], failedHere: false, deadLettered: false };
  const last = answer?.reason ?? d.reason;
  const reason = stillOpen ? `dead-lettered: ${last ?? 'delivery attempts kept failing'}` : d.reason;
  const statements = stillOpen
    ? [
        services.deliveries.outcomeStatement(
          { deliveryId: d.id, status: 'failed', reason: reason ?? undefined, attempted: false },
          now,
        ),
      ]
    : [];
  statements.push(services.operations.recordDeadLetterStatement(d.id, channel, reason, now));
  return { statements, failedHere: stillOpen, deadLettered: true };
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
    ...deadLetterStatements(services, channel, d, carried.get(d.id), now),
  }));
  await services.commit(results.flatMap((r) => r.statements));
  const failed = results
    .filter((r) => r.failedHere)
    .map((r) => ({ deliveryId: r.d.id, status: 'failed' as const }));
  await recordStatusChangesById(services, failed);
  // An escalation step whose attempts are spent brings the next step forward.
  await followEscalations(services, failed);
  const dead = results.filter((r) => r.deadLettered).length;
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
