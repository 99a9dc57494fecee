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
] as const;
export type DeliveryStatus = (typeof STATUSES)[number];

/** Statuses after which the delivery will not be attempted again. */
export const FINAL_FOR_SENDING: ReadonlySet<DeliveryStatus> = new Set(
  STATUSES.filter((s) => s !== 'created' && s !== 'queued' && s !== 'deferred'),
);

const TRANSITIONS: Record<DeliveryStatus, readonly DeliveryStatus[]> = {
  created: [
    'queued',
    'deferred',
    'sent',
    'failed',
    'suppressed',
    'rate_limited',
    'duplicate',
    'skipped',
    'unsubscribed',
  ],
  queued: [
    'queued',
    'deferred',
    'sent',
    'failed',
    'suppressed',
    'rate_limited',
    'duplicate',
    'skipped',
    'unsubscribed',
    'created',
  ],
  deferred: [
    'queued',
    'deferred',
    'sent',
    'failed',
    'suppressed',
    'rate_limited',
    'duplicate',
    'unsubscribed',
  ],
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
