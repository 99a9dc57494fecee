import type { Delivery, Notification } from '../../domain/delivery';
import { notFound } from '../../domain/errors';
import type { InboxItem } from '../../domain/inbox';
import { type AddressView, type ContactView, viewAddress, viewContact } from '../../domain/masking';
import type { Preferences } from '../../domain/preferences';
import type { ErasureRecord } from '../../storage/deliveries-repo';
import type { Services } from '../container';
import { eraseInbox, exportInbox } from '../inbox/inbox';

/** What one erasure did. */
export interface Erasure {
  userId: string;
  at: string;
  /** Whether a contact row was deleted. */
  contact: boolean;
  /** Whether stored preferences were deleted. */
  preferences: boolean;
  /** Whether the user's key was destroyed: every archived copy of their data is now unreadable. */
  archive: boolean;
  /** In-app items removed from the user's inbox. */
  inbox: number;
  /** The topics the user was removed from. */
  topics: string[];
}

/**
 * Erasure (GDPR art. 17) of a user id Herald knows, as a contact, only as a recipient of
 * deliveries (an inline recipient with a userId has no contact row), or only in the archive: the
 * contact row, its preferences and the sandbox's captured messages go; the user's deliveries keep
 * their ids, statuses and history for accounting, but their address is erased, and so is the
 * template data of every notification sent to this user alone; the user's key is destroyed, so
 * the archived copies become unreadable. One atomic batch per database (the user's rows and key
 * share one). An id Herald holds nothing on is a 404.
 */
export async function eraseContact(services: Services, userId: string): Promise<Erasure> {
  const [contact, preferences, deliveries, archive, inboxItems, topics] = await Promise.all([
    services.contacts.exists(userId),
    services.preferences.get(userId),
    services.deliveries.hasDeliveriesFor(userId),
    services.userKeys.hasKey(userId),
    exportInbox(services, userId),
    services.topicSubscriptions.topicsOf(userId),
  ]);
  if (!contact && !preferences && !deliveries && !archive && inboxItems.length === 0 && topics.length === 0)
    throw notFound(`contact ${userId}`);
  const now = services.now();
  await services.commit([
    services.contacts.deleteStatement(userId),
    services.preferences.deleteStatement(userId),
    services.userKeys.eraseStatement(userId, now),
    ...(await services.deliveries.eraseStatements(userId, now, contact)),
    ...services.outbox.deleteForUserStatements(userId),
    ...services.topicSubscriptions.removeUserStatements(userId),
  ]);
  // After D1: a retry of a failed erasure still finds the user by their inbox.
  const inbox = inboxItems.length > 0 ? await eraseInbox(services, userId) : 0;
  return {
    userId,
    at: new Date(now).toISOString(),
    contact,
    preferences: preferences !== null,
    archive,
    inbox,
    topics,
  };
}

/** A delivery in the export: its address whole, but never a webhook secret. */
type ExportedDelivery = Omit<Delivery, 'address'> & { address: AddressView | null };

/** Everything Herald holds on a user (GDPR art. 15): contact, preferences, deliveries, their data. */
export interface ContactExport {
  exportedAt: string;
  contact: ContactView | null;
  preferences: Preferences | null;
  deliveries: ExportedDelivery[];
  notifications: Pick<Notification, 'id' | 'type' | 'source' | 'priority' | 'data' | 'createdAt'>[];
  /** The user's in-app inbox, newest first (archived items included). */
  inbox: InboxItem[];
  /** The topics the user follows. */
  topics: string[];
  /**
   * What erasure removed, when it ran: the deliveries listed above then hold no address, and the
   * notifications sent to this user alone no data; `archive`: archived copies existed and their
   * key is destroyed, so none can be read. Null when the user was never erased.
   */
  erased: (ErasureRecord & { archive: boolean }) | null;
}

const EXPORT_LIMIT = 10_000;

/**
 * The export of a user id: 404 when Herald holds nothing on it (never seen, or a contact erased
 * with nothing else). After an erasure it lists what is left (deliveries without address) and
 * says what was erased.
 */
export async function exportContact(services: Services, userId: string): Promise<ContactExport> {
  const [contact, preferences, deliveries, erasedRows, archiveErased, inbox, topics] = await Promise.all([
    services.contacts.get(userId),
    services.preferences.get(userId),
    services.deliveries.listForUser(userId, EXPORT_LIMIT),
    services.deliveries.erasureOf(userId),
    services.userKeys.destroyed(userId),
    exportInbox(services, userId),
    services.topicSubscriptions.topicsOf(userId),
  ]);
  const erased = erasedRows ? { ...erasedRows, archive: archiveErased } : null;
  if (!contact && deliveries.length === 0 && !preferences && inbox.length === 0 && topics.length === 0)
    throw notFound(`contact ${userId}`);
  const notifications = await services.deliveries.getNotifications(deliveries.map((d) => d.notificationId));
  return {
    exportedAt: new Date(services.now()).toISOString(),
    contact: contact ? viewContact(contact, 'whole') : null,
    preferences,
    deliveries: deliveries.map((d) => ({
      ...d,
      address: d.address ? viewAddress(d.address, 'whole') : null,
    })),
    notifications: notifications.map(({ id, type, source, priority, data, createdAt }) => ({
      id,
      type,
      source,
      priority,
      data,
      createdAt,
    })),
    inbox,
    topics,
    erased,
  };
}
