import { isChannel } from '../../domain/channels';
import { STEP_FAILED, type StepMark } from '../../domain/escalation';
import type { DeliveryStatus } from '../../domain/status';
import { groupBy } from '../../lib/collections';
import { log } from '../../lib/log';
import { sendToQueue } from '../../queue/producer';
import type { EscalationRow } from '../../storage/deliveries-repo';
import type { Services } from '../container';

/** A status one delivery reached, as the code that recorded it saw it. */
export interface StatusChange {
  deliveryId: string;
  status: DeliveryStatus;
}

/**
 * Escalation follows each status a step reaches, at once: a later step whose `unless` names it is
 * skipped; when every delivery of a step failed (no address, provider failure, bounce), the next
 * step comes forward now. One read finds which of the changed deliveries are steps, unless the
 * caller knows (the consumer passes only those it loaded as steps; a first open or click reads its
 * step with its write). Never throws: the status itself is recorded.
 */
export async function followEscalations(
  services: Services,
  changes: readonly StatusChange[],
  /** The steps among the changed deliveries, when the caller read them already (none: read here). */
  known?: readonly EscalationRow[],
): Promise<void> {
  if (changes.length === 0) return;
  try {
    const steps = known ?? (await services.deliveries.escalationRows(changes.map((c) => c.deliveryId)));
    const rows = new Map(steps.map((row) => [row.id, row]));
    for (const change of changes) {
      const row = rows.get(change.deliveryId);
      if (row) await follow(services, row, change.status);
    }
  } catch (error) {
    log('error', 'escalation.follow_failed', {
      count: changes.length,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

async function follow(services: Services, row: EscalationRow, status: DeliveryStatus): Promise<void> {
  const mark = JSON.parse(row.escalation) as StepMark;
  const now = services.now();
  const skipped = await services.deliveries.skipLaterSteps(row, mark.step, status, now);
  if (skipped.length > 0) {
    log('info', 'escalation.skipped', {
      notificationId: row.notification_id,
      step: mark.step,
      status,
      count: skipped.length,
    });
  }
  if (!STEP_FAILED.has(status)) return;
  const statuses = await services.deliveries.stepStatuses(row, mark.step);
  if (!statuses.every((s) => STEP_FAILED.has(s))) return;
  const forward = await services.deliveries.bringForward(row, mark.step + 1, now);
  for (const [channel, deliveries] of groupBy(forward, (d) => d.channel)) {
    const { unsent } = await sendToQueue(
      services.env,
      channel,
      [{ deliveryIds: deliveries.map((d) => d.id), attempt: 0, delaySeconds: 0, at: now }],
      'escalation',
    );
    // Not lost either way: each still has its delayed message from ingest, and the reaper.
    if (unsent.length > 0) log('warn', 'escalation.enqueue_failed', { channel, count: unsent.length });
  }
  if (forward.length > 0) {
    log('info', 'escalation.forward', {
      notificationId: row.notification_id,
      step: mark.step + 1,
      count: forward.length,
    });
  }
}

/**
 * Sends escalation steps whose time came (the recipient object's alarm): each to its channel's
 * queue now; the consumer sends a `scheduled` row once due, and drops one skipped or canceled
 * meanwhile. Throws when a queue refuses: the object keeps the timers and tries again.
 */
export async function releaseSteps(
  services: Services,
  timers: readonly { deliveryId: string; channel: string }[],
): Promise<void> {
  for (const [channel, group] of groupBy(timers, (t) => t.channel)) {
    if (!isChannel(channel)) continue;
    const { unsent } = await sendToQueue(
      services.env,
      channel,
      [{ deliveryIds: group.map((t) => t.deliveryId), attempt: 0, delaySeconds: 0, at: services.now() }],
      'escalation',
    );
    if (unsent.length > 0) throw new Error(`the ${channel} queue refused ${unsent.length} escalation steps`);
  }
}
