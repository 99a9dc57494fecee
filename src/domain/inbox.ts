/**
 * The in-app inbox: one per user id, its items, its counts and the frames its sockets receive.
 * Pure rules; the Durable Object (`src/durable/inbox.ts`) stores them.
 */

export const INBOX_ACTIONS = ['seen', 'read', 'unread', 'archive', 'unarchive', 'click'] as const;
export type InboxAction = (typeof INBOX_ACTIONS)[number];

/** Actions a batch (or a socket) may apply; `click` is one item's, with its URL. */
export const BATCH_ACTIONS = ['seen', 'read', 'unread', 'archive', 'unarchive'] as const;
export type BatchAction = (typeof BATCH_ACTIONS)[number];

export const FEED_STATUSES = ['all', 'unread', 'unseen', 'read'] as const;
export type FeedStatus = (typeof FEED_STATUSES)[number];

export const ARCHIVED_FILTERS = ['exclude', 'include', 'only'] as const;
export type ArchivedFilter = (typeof ARCHIVED_FILTERS)[number];

/** Items kept per user when `INBOX_MAX_ITEMS` is not set: older ones are removed. */
export const DEFAULT_INBOX_MAX_ITEMS = 1000;

export interface InboxButton {
  label: string;
  url: string;
}

/** What the inapp consumer appends: one delivery's rendered item. */
export interface NewInboxItem {
  deliveryId: string;
  notificationId: string;
  type: string;
  category: string | null;
  title: string;
  body: string;
  url: string | null;
  avatar: string | null;
  actions: InboxButton[];
  data: unknown;
  createdAt: number;
}

/** An item as clients see it: what was appended, and what the user did with it (ISO times). */
export interface InboxItem extends Omit<NewInboxItem, 'createdAt'> {
  id: string;
  createdAt: string;
  seenAt: string | null;
  readAt: string | null;
  archivedAt: string | null;
}

/** Unarchived items, and how many of them are unread and unseen. */
export interface InboxCounts {
  total: number;
  unread: number;
  unseen: number;
}

export type FrameKind = 'item.created' | 'item.updated' | 'item.deleted' | 'reset';

/** One change, as every socket of the user receives it, in `seq` order. */
export interface InboxFrame {
  seq: number;
  kind: FrameKind;
  item?: InboxItem;
  counts: InboxCounts;
}

/** The item id of a delivery's item: the delivery id's random part under `inb_`. */
export function itemIdOf(deliveryId: string): string {
  return `inb_${deliveryId.slice(deliveryId.indexOf('_') + 1)}`;
}

/** The state of an item that actions change (milliseconds, null when not). */
export interface ItemState {
  seenAt: number | null;
  readAt: number | null;
  archivedAt: number | null;
  clickedAt: number | null;
}

/**
 * The state after `action`, or null when it changes nothing (a repeated mark sends no frame).
 * Read implies seen; a click implies read.
 */
export function applyAction(state: ItemState, action: InboxAction, nowMs: number): ItemState | null {
  const next = { ...state };
  switch (action) {
    case 'seen':
      next.seenAt ??= nowMs;
      break;
    case 'read':
      next.readAt ??= nowMs;
      next.seenAt ??= nowMs;
      break;
    case 'unread':
      next.readAt = null;
      break;
    case 'archive':
      next.archivedAt ??= nowMs;
      break;
    case 'unarchive':
      next.archivedAt = null;
      break;
    case 'click':
      next.clickedAt ??= nowMs;
      next.readAt ??= nowMs;
      next.seenAt ??= nowMs;
      break;
  }
  const same =
    next.seenAt === state.seenAt &&
    next.readAt === state.readAt &&
    next.archivedAt === state.archivedAt &&
    next.clickedAt === state.clickedAt;
  return same ? null : next;
}

/** What an item adds to the counts (an archived item counts nowhere). */
export function countsOf(state: Pick<ItemState, 'seenAt' | 'readAt' | 'archivedAt'>): InboxCounts {
  if (state.archivedAt !== null) return { total: 0, unread: 0, unseen: 0 };
  return { total: 1, unread: state.readAt === null ? 1 : 0, unseen: state.seenAt === null ? 1 : 0 };
}

/** `a + sign × b`, field by field. */
export function addCounts(a: InboxCounts, b: InboxCounts, sign: 1 | -1 = 1): InboxCounts {
  return {
    total: a.total + sign * b.total,
    unread: a.unread + sign * b.unread,
    unseen: a.unseen + sign * b.unseen,
  };
}

/** The delivery status an action reports: a read is an open, a click a click. */
export function deliveryStatusOf(action: InboxAction): 'opened' | 'clicked' | null {
  if (action === 'read') return 'opened';
  if (action === 'click') return 'clicked';
  return null;
}
