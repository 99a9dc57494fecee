import type { Notification } from '../../domain/delivery';
import type { DeliveryStatus } from '../../domain/status';
import type { Services } from '../container';
import { recordStatusChangesById } from '../operations/metrics';
import { requireNotification } from './notification-lookup';

/** What canceling one notification did. */
export interface Cancellation {
  id: string;
  /** Deliveries called off: they will not be handed to a provider. */
  canceled: string[];
  /** Deliveries that had already gone (or ended), with their status. */
  alreadyGone: { id: string; status: DeliveryStatus }[];
}

/** Delivery ids read per page when a notification has more than a read lists. */
const ID_PAGE = 1000;

/** Most notifications one `DELETE /v1/notifications?cancelKey=` cancels; call again for more. */
export const MAX_CANCELED_PER_CALL = 100;

/**
 * Cancels every delivery of a notification that has not been handed to a provider (`created`,
 * `queued`, `deferred`): each becomes `canceled` in one conditional write, so a consumer that
 * loads it afterwards drops it. One a consumer was handing to a provider at that very moment
 * keeps the provider's answer (sent, unknown): its status says what happened.
 */
export async function cancelNotification(services: Services, id: string): Promise<Cancellation> {
  const notification = await requireNotification(services, id);
  // A send to topics stops expanding first, so no subscriber's delivery is added after this.
  await services.topicSends.cancel([notification.id], services.now());
  const all = await allDeliveryIds(services, notification);
  const canceled = await services.deliveries.cancel(all, services.now());
  const done = new Set(canceled);
  const rest = all.filter((d) => !done.has(d));
  const statuses = new Map((await services.deliveries.getDeliveries(rest)).map((d) => [d.id, d.status]));
  await recordStatusChangesById(
    services,
    canceled.map((deliveryId) => ({ deliveryId, status: 'canceled' as const })),
  );
  return {
    id: notification.id,
    canceled: all.filter((d) => done.has(d)),
    alreadyGone: rest.map((d) => ({ id: d, status: statuses.get(d) ?? 'canceled' })),
  };
}

/** Every delivery id of a notification: beyond what a read lists (a large topic), page by page. */
async function allDeliveryIds(services: Services, notification: Notification): Promise<string[]> {
  if (!notification.deliveriesTruncated) return notification.deliveryIds;
  const ids: string[] = [];
  for (;;) {
    const page = await services.deliveries.deliveryIdsAfter(notification.id, ids.at(-1) ?? null, ID_PAGE);
    ids.push(...(page ?? []));
    if (!page || page.length < ID_PAGE) return ids;
  }
}

/** Cancels the notifications sharing a producer's `cancelKey`, up to {@link MAX_CANCELED_PER_CALL}. */
export async function cancelByKey(
  services: Services,
  cancelKey: string,
): Promise<{ cancelKey: string; notifications: Cancellation[]; more: boolean }> {
  const ids = await services.deliveries.notificationsWithCancelKey(cancelKey, MAX_CANCELED_PER_CALL + 1);
  const notifications: Cancellation[] = [];
  for (const id of ids.slice(0, MAX_CANCELED_PER_CALL))
    notifications.push(await cancelNotification(services, id));
  return { cancelKey, notifications, more: ids.length > MAX_CANCELED_PER_CALL };
}
