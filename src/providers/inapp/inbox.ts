import type { AddressOf } from '../../domain/address';
import {
  DEFAULT_INBOX_MAX_ITEMS,
  type InboxCounts,
  type InboxItem,
  type NewInboxItem,
} from '../../domain/inbox';
import { idTimeMs } from '../../lib/ids';
import type { Provider, ProviderDefinition, SendRequest, SendResult } from '../types';

/** The part of the Inbox Durable Object this provider calls (`src/durable/inbox.ts`). */
interface InboxStub {
  append(
    item: NewInboxItem,
    maxItems: number,
  ): Promise<{ item: InboxItem; created: boolean; counts: InboxCounts; seq: number }>;
}

function isNamespace(value: unknown): value is DurableObjectNamespace {
  return typeof value === 'object' && value !== null && 'idFromName' in value && 'get' in value;
}

/**
 * The in-app channel's provider: appends the rendered item to the user's inbox (one Durable
 * Object per user id), once per delivery id, so a repeated send is harmless. Appended is
 * delivered: the item is in front of the user as soon as their inbox is open.
 */
export const inbox: ProviderDefinition = {
  name: 'inbox',
  channel: 'inapp',
  idempotent: true,
  limits: { recipientsPerRequest: 1 },
  create(env): Provider<AddressOf<'inapp'>> {
    const namespace = env.INBOX;
    const configured = Number(env.INBOX_MAX_ITEMS);
    const maxItems = Number.isInteger(configured) && configured > 0 ? configured : DEFAULT_INBOX_MAX_ITEMS;
    return {
      name: 'inbox',
      channel: 'inapp',
      idempotent: true,
      async send(request: SendRequest<AddressOf<'inapp'>>): Promise<SendResult> {
        if (!isNamespace(namespace)) {
          return { kind: 'permanent', reason: 'inbox: the INBOX binding is missing', configError: true };
        }
        const stub = namespace.get(namespace.idFromName(request.address.userId)) as unknown as InboxStub;
        try {
          const { item } = await stub.append(itemOf(request), maxItems);
          return { kind: 'sent', providerMessageId: item.id, delivered: true };
        } catch (error) {
          return {
            kind: 'retryable',
            reason: `inbox: ${error instanceof Error ? error.message : String(error)}`,
          };
        }
      },
    };
  },
};

function itemOf(request: SendRequest<AddressOf<'inapp'>>): NewInboxItem {
  const { message } = request;
  return {
    deliveryId: request.deliveryId,
    notificationId: request.notificationId,
    type: request.type,
    category: request.category ?? null,
    title: message.title ?? '',
    body: message.body ?? '',
    url: message.url ?? null,
    avatar: message.avatar ?? null,
    actions: message.actions ?? [],
    data: message.data ?? null,
    // Items are ordered by their delivery id, so their time is the delivery's.
    createdAt: idTimeMs('dlv', request.deliveryId) ?? Date.now(),
  };
}
