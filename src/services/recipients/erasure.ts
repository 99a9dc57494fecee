import type { Contact } from '../../domain/contact';
import type { Delivery, Notification } from '../../domain/delivery';
import { notFound } from '../../domain/errors';
import type { Preferences } from '../../domain/preferences';
import type { Services } from '../container';

/**
 * Erasure (GDPR art. 17): the contact row, its preferences and the sandbox's captured messages go;
 * the user's deliveries keep their ids, statuses and history for accounting, but lose their
 * address. One atomic batch.
 */
export async function eraseContact(services: Services, userId: string): Promise<void> {
  if (!(await services.contacts.exists(userId))) throw notFound(`contact ${userId}`);
  await services.commit([
    services.contacts.deleteStatement(userId),
    services.preferences.deleteStatement(userId),
    services.deliveries.eraseAddressesStatement(userId),
    services.outbox.deleteForUserStatement(userId),
  ]);
}

/** Everything Herald holds on a user (GDPR art. 15): contact, preferences, deliveries, their data. */
export interface ContactExport {
  exportedAt: string;
  contact: Contact | null;
  preferences: Preferences | null;
  deliveries: Delivery[];
  notifications: Pick<Notification, 'id' | 'type' | 'source' | 'priority' | 'data' | 'createdAt'>[];
}

const EXPORT_LIMIT = 10_000;

export async function exportContact(services: Services, userId: string): Promise<ContactExport> {
  const [contact, preferences, deliveries] = await Promise.all([
    services.contacts.get(userId),
    services.preferences.get(userId),
    services.deliveries.listForUser(userId, EXPORT_LIMIT),
  ]);
  if (!contact && deliveries.length === 0 && !preferences) throw notFound(`contact ${userId}`);
  const notifications = await services.deliveries.getNotifications(deliveries.map((d) => d.notificationId));
  return {
    exportedAt: new Date(services.now()).toISOString(),
    contact,
    preferences,
    deliveries,
    notifications: notifications.map(({ id, type, source, priority, data, createdAt }) => ({
      id,
      type,
      source,
      priority,
      data,
      createdAt,
    })),
  };
}
