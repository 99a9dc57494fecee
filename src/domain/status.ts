/**
 * The delivery state machine. `created → queued → sent → delivered → opened → clicked` is the
 * happy path; `deferred` waits (quiet hours, rate limit) and returns to `queued`; the side states
 * end a delivery. An event that would move a delivery backwards is recorded in the history but
 * leaves the status alone (an `opened` after `bounced` does not regress it).
 */
export const STATUSES = [
  'created',
  'queued',
  'deferred',
  'sent',
  'delivered',
  'opened',
  'clicked',
  'failed',
  'bounced',
  'complained',
  'suppressed',
  'unsubscribed',
  'rate_limited',
  'duplicate',
  'skipped',
  /** The provider may or may not have delivered it (a timeout after the request left), and the type says give up. */
  'unknown',
  /** The producer called it off before it was handed to a provider (DELETE /v1/notifications/{id}). */
  'canceled',
  /** A later escalation step, waiting for its time (or for an earlier step to make it unnecessary). */
  'scheduled',
  /** Held in a digest: it goes out folded into the digest's one delivery (its reason names it). */
  'digested',
] as const;
export type DeliveryStatus = (typeof STATUSES)[number];

/** Statuses after which the delivery will not be attempted again. */
export const FINAL_FOR_SENDING: ReadonlySet<DeliveryStatus> = new Set(
  STATUSES.filter((s) => s !== 'created' && s !== 'queued' && s !== 'deferred' && s !== 'scheduled'),
);

/** Where a delivery still waiting to be sent may go: another wait, or an outcome of sending. */
const FROM_WAITING: readonly DeliveryStatus[] = [
  'queued',
  'deferred',
  'digested',
  'sent',
  'failed',
  'suppressed',
  'rate_limited',
  'duplicate',
  'unsubscribed',
  'unknown',
];

/**
 * What a provider's callback or a tracking hit can report: each proves the message went out, so it
 * moves a delivery even before the consumer's own record of the send has landed.
 */
export const REPORTED_AFTER_SENDING: readonly DeliveryStatus[] = [
  'delivered',
  'opened',
  'clicked',
  'bounced',
  'complained',
  'unsubscribed',
];

const TRANSITIONS: Record<DeliveryStatus, readonly DeliveryStatus[]> = {
  created: [...FROM_WAITING, ...REPORTED_AFTER_SENDING, 'skipped', 'canceled'],
  // Back to `created` when the sweeper's enqueue failed and it gives its claim back.
  queued: [...FROM_WAITING, ...REPORTED_AFTER_SENDING, 'skipped', 'created', 'canceled'],
  deferred: [...FROM_WAITING, ...REPORTED_AFTER_SENDING, 'canceled'],
  sent: ['delivered', 'opened', 'clicked', 'failed', 'bounced', 'complained', 'unsubscribed'],
  delivered: ['opened', 'clicked', 'bounced', 'complained', 'unsubscribed'],
  opened: ['clicked', 'complained', 'unsubscribed'],
  clicked: ['complained', 'unsubscribed'],
  failed: ['queued'],
  bounced: [],
  complained: [],
  suppressed: [],
  unsubscribed: [],
  rate_limited: [],
  duplicate: [],
  skipped: [],
  unknown: ['delivered', 'opened', 'clicked', 'bounced', 'complained', 'unsubscribed'],
  // A cancel that came while a consumer was already sending: what the provider then reports stands.
  canceled: ['sent', 'unknown', ...REPORTED_AFTER_SENDING],
  scheduled: [...FROM_WAITING, 'skipped', 'canceled', 'created', 'digested'],
  // The digest's carrier goes back to `queued` to be sent; a held one may be canceled.
  digested: ['queued', 'canceled'],
};

/** Whether `from → to` moves the delivery's status (else the event is history only). */
export function canTransition(from: DeliveryStatus, to: DeliveryStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isStatus(value: string): value is DeliveryStatus {
  return (STATUSES as readonly string[]).includes(value);
}

/** One entry of a delivery's status history. */
export interface HistoryEntry {
  status: DeliveryStatus;
  at: string;
  reason?: string;
  provider?: string;
}
