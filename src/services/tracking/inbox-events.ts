import { deliveryStatusOf, type InboxAction } from '../../domain/inbox';
import type { InboxChange } from '../../durable/inbox';
import { log } from '../../lib/log';
import type { EscalationRow } from '../../storage/deliveries-repo';
import type { Services } from '../container';
import { inboxOf } from '../inbox/inbox';
import { followEscalations } from '../operations/escalation';
import { recordStatusChangesById } from '../operations/metrics';

/**
 * Applies a mark and records what it means for the deliveries: a read is their `opened`, a click
 * their `clicked` (the first of each, as for email opens and clicks).
 */
export async function markInbox(
  services: Services,
  userId: string,
  target: { ids: string[] } | { all: true },
  action: InboxAction,
): Promise<InboxChange> {
  const change = await inboxOf(services, userId).mark(target, action, services.now());
  await recordInboxEvents(services, change);
  return change;
}

/** Records the delivery events of an inbox change; never throws (the mark itself stands). */
export async function recordInboxEvents(services: Services, change: InboxChange): Promise<void> {
  const now = services.now();
  const reported: { deliveryId: string; status: 'opened' | 'clicked' }[] = [];
  const steps: EscalationRow[] = [];
  for (const { item, action } of change.changed) {
    for (const status of statusesOf(action)) {
      try {
        const first = await services.events.applyFirst({ deliveryId: item.deliveryId, status, at: now }, now);
        if (first.applied) reported.push({ deliveryId: item.deliveryId, status });
        if (first.step) steps.push(first.step);
      } catch (error) {
        log('error', 'inbox.event_failed', {
          deliveryId: item.deliveryId,
          status,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }
  if (reported.length > 0) {
    await recordStatusChangesById(services, reported);
    if (steps.length > 0) await followEscalations(services, reported, steps);
  }
}

/** A click is a read too: the delivery is opened, then clicked. */
function statusesOf(action: InboxAction): ('opened' | 'clicked')[] {
  const status = deliveryStatusOf(action);
  if (status === 'clicked') return ['opened', 'clicked'];
  return status ? [status] : [];
}
