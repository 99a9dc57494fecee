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
 * replayed. A delivery that has since been sent or replayed is left alone.
 */
export async function replayDeadLetters(
  services: Services,
  selection: { ids?: string[]; channel?: Channel },
): Promise<string[]> {
  const ops = services.operations;
  const now = services.now();
  let ids = selection.ids;
  if (!ids) {
    if (!selection.channel)
      throw new AppError(422, 'validation_error', 'give ids or a channel', [
        { field: 'ids', message: 'required without channel' },
      ]);
    ids = (await ops.listDeadLetters(selection.channel, 1000)).map((d) => d.deliveryId);
  }
  const deliveries = (await services.deliveries.getDeliveries(ids)).filter((d) => d.status === 'failed');
  const pending = new Set((await ops.listDeadLetters(undefined, 10_000)).map((d) => d.deliveryId));
  const replayable = deliveries.filter(
    (d) => pending.has(d.id) && (!selection.channel || d.channel === selection.channel),
  );
  if (replayable.length === 0) return [];

  const statements = replayable.flatMap((d) => [
    services.deliveries.resetForReplayStatement(d.id, now),
    ops.markReplayedStatement(d.id, now),
  ]);
  await services.commit(statements);
  const results = await Promise.all(
    [...groupBy(replayable, (d) => d.channel)].map(([channel, list]) =>
      sendToQueue(services.env, channel, [{ deliveryIds: list.map((d) => d.id), attempt: 0 }], 'replay'),
    ),
  );
  const queued = results.flatMap((r) => r.sent);
  if (queued.length > 0) await services.deliveries.markQueued(queued, now);
  return replayable.map((d) => d.id);
}
