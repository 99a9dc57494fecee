import type { Address } from './address';
import type { Channel, Priority } from './channels';
import type { DeliveryStatus, HistoryEntry } from './status';

export interface Delivery {
  id: string;
  notificationId: string;
  userId: string | null;
  channel: Channel;
  address: Address | null;
  status: DeliveryStatus;
  reason: string | null;
  provider: string | null;
  providerMessageId: string | null;
  attempts: number;
  templateVersion: string | null;
  history: HistoryEntry[];
  createdAt: string;
  updatedAt: string;
  sentAt: string | null;
}

export interface Notification {
  id: string;
  type: string;
  source: string | null;
  priority: Priority;
  data: Record<string, unknown>;
  channels: Channel[] | null;
  sendAt: string | null;
  dedupeKey: string | null;
  /** The producer's key for calling it off together with others (DELETE /v1/notifications?cancelKey=). */
  cancelKey: string | null;
  requestHash: string;
  deliveryIds: string[];
  createdAt: string;
  /** The delivery ids in the order planned, kept when they span several buckets (id order otherwise). */
  plan?: string[];
  /**
   * True when the notification has more deliveries than a read lists (MAX_DELIVERIES_LISTED, a
   * send to a large topic): `deliveryIds` holds the first of them, in id order.
   */
  deliveriesTruncated?: boolean;
}

/** Most deliveries one read of a notification lists; the rest are read page by page. */
export const MAX_DELIVERIES_LISTED = 1000;

/** A delivery joined with what the consumer needs of its notification to render and send it. */
export interface DeliveryToSend extends Delivery {
  type: string;
  priority: Priority;
  data: Record<string, unknown>;
  dedupeKey: string | null;
  /** When the producer asked for it to go out (epoch ms), or null for now. */
  sendAtMs: number | null;
  /** Why the row could not be read (an address that does not decrypt); such a delivery fails alone. */
  unreadable?: string;
  /** Its escalation step (`{ step, unless }` JSON), when it is one. */
  escalation?: string | null;
}
