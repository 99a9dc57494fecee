import { type InboxItem, itemIdOf } from '../../domain/inbox';
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

/** The inbox items of these deliveries (the in-app ones), by delivery id: one call per user. */
export async function inboxItemsOf(
  services: Services,
  deliveries: readonly { id: string; channel: string; userId: string | null }[],
): Promise<Map<string, InboxItem>> {
  const byUser = new Map<string, string[]>();
  for (const d of deliveries) {
    if (d.channel !== 'inapp' || d.userId === null) continue;
    byUser.set(d.userId, [...(byUser.get(d.userId) ?? []), d.id]);
  }
  const found = new Map<string, InboxItem>();
  await Promise.all(
    [...byUser].map(async ([userId, ids]) => {
      for (const item of await inboxOf(services, userId).items(ids.map(itemIdOf)))
        found.set(item.deliveryId, item);
    }),
  );
  return found;
}
