import type { InboxItem } from '../../domain/inbox';
import type { InboxRpc } from '../../durable/inbox';
import type { Services } from '../container';

/** The inbox of a user id: every user id has one (created on first use). */
export function inboxOf(services: Services, userId: string): InboxRpc {
  const namespace = services.env.INBOX;
  // The stub's generated RPC types cannot express an item's free-form `data`; InboxRpc names them.
  return namespace.get(namespace.idFromName(userId)) as unknown as InboxRpc;
}

/** A user's items for their data export (newest first). */
export function exportInbox(services: Services, userId: string): Promise<InboxItem[]> {
  return inboxOf(services, userId).exportItems();
}

/** Erasure: the user's inbox is emptied; how many items it held. */
export function eraseInbox(services: Services, userId: string): Promise<number> {
  return inboxOf(services, userId).erase();
}
