import type { Channel } from '../../domain/channels';
import { AppError } from '../../domain/errors';
import { groupBy } from '../../lib/collections';
import { log } from '../../lib/log';
import type { QueueMessage } from '../../queue/messages';
import { sendToQueue } from '../../queue/producer';
import type { Services } from '../container';
import { raiseAlert } from './alerts';
import { recordStatusChangesById } from './metrics';

/**
 * Handles what reached a channel's dead-letter queue: the delivery ends `failed` with its last
 * error (a consumer that crashed repeatedly leaves none, so one is given), is kept replayable in
 * `dead_letters`, and an alert is raised (one digest a minute, however many arrive).
 */
export async function recordDeadLetters(
  services: Services,
  channel: Channel,
  messages: QueueMessage[],
): Promise<void> {
  const now = services.now();
  const ops = services.operations;
  const ids = [...new Set(messages.flatMap((m) => m.deliveryIds))];
  const loaded = await services.deliveries.getDeliveries(ids);
  const statements: D1PreparedStatement[] = [];
  for (const d of loaded) {
    const stillOpen = d.status === 'created' || d.status === 'queued' || d.status === 'deferred';
    if (!stillOpen && d.status !== 'failed') continue;
    const reason = stillOpen ? `dead-lettered: ${d.reason ?? 'delivery attempts kept failing'}` : d.reason;
    if (stillOpen) {
      statements.push(
        services.deliveries.outcomeStatement(
          { deliveryId: d.id, status: 'failed', reason: reason ?? undefined, attempted: false },
          now,
        ),
      );
    }
    statements.push(ops.recordDeadLetterStatement(d.id, channel, reason, now));
  }
  if (statements.length > 0) await services.commit(statements);
  await recordStatusChangesById(
    services,
    loaded.filter((d) => d.status !== 'failed').map((d) => ({ deliveryId: d.id, status: 'failed' as const })),
  );
  log('error', 'delivery.dead_lettered', { channel, count: ids.length });
  await raiseAlert(
    services,
    `dead-letters:${channel}`,
    `${ids.length} ${channel} deliveries reached the dead-letter queue`,
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
  const claimed = await ops.claimForReplay(candidates, selection.channel, now, (claimedAt) =>
    services.deliveries.resetForReplayStatements(candidates, claimedAt, now),
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
