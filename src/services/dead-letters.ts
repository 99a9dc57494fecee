import type { Channel } from '../domain/channels';
import { log } from '../lib/log';
import type { QueueMessage } from '../queue/messages';
import type { Services } from './context';

/**
 * Handles what reached a channel's dead-letter queue: the delivery ends `failed` with its last
 * error (a consumer that crashed repeatedly leaves no error, so one is given).
 */
export async function recordDeadLetters(
  services: Services,
  channel: Channel,
  messages: QueueMessage[],
): Promise<void> {
  const now = services.now();
  const ids = [...new Set(messages.flatMap((m) => m.deliveryIds))];
  const loaded = await services.deliveries.getDeliveries(ids);
  const statements = loaded
    .filter((d) => d.status === 'created' || d.status === 'queued' || d.status === 'deferred')
    .map((d) =>
      services.deliveries.outcomeStatement(
        {
          deliveryId: d.id,
          status: 'failed',
          reason: `dead-lettered: ${d.reason ?? 'delivery attempts kept failing'}`,
          attempted: false,
        },
        now,
      ),
    );
  if (statements.length > 0) await services.env.DB.batch(statements);
  log('error', 'delivery.dead_lettered', { channel, count: ids.length });
}
