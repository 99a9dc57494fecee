import type { Notification } from '../../domain/delivery';
import { AppError, notFound } from '../../domain/errors';
import type { Services } from '../container';

/**
 * A notification by its id, whole; a 404 `expired` for one accepted before the retention removed
 * it (archived), a 404 `not_found` for one never accepted.
 */
export async function requireNotification(services: Services, id: string): Promise<Notification> {
  const notification = await services.deliveries.getNotification(id);
  if (notification) return notification;
  const acceptedAt = await services.deliveries.acceptedAt(id);
  if (acceptedAt !== null && acceptedAt < (await services.operations.purgedBefore())) {
    throw new AppError(404, 'expired', `notification ${id} is older than the retention and was archived`);
  }
  throw notFound(`notification ${id}`);
}
