import type { Channel } from './channels';
import type { PlannedDelivery, ResolvedRecipient } from './delivery-plan';
import { planDeliveries } from './delivery-plan';
import { parseDuration } from './durations';
import type { DeliveryStatus } from './status';
import { DEFAULT_ESCALATION_UNLESS, type TypeConfig } from './type-config';

/** One step of an escalation, as planning uses it. */
export interface EscalationStep {
  channel: Channel;
  afterSeconds: number;
  unless: readonly DeliveryStatus[];
}

/** What a step's delivery row remembers (JSON in `deliveries.escalation`). */
export interface StepMark {
  step: number;
  unless: DeliveryStatus[];
}

/** Statuses of an earlier step that bring the next one forward: it did not reach the user. */
export const STEP_FAILED: ReadonlySet<DeliveryStatus> = new Set([
  'failed',
  'bounced',
  'skipped',
  'suppressed',
]);

/** The type's escalation narrowed to channels with a template, or null when it has none. */
export function escalationOf(config: TypeConfig, templated: readonly Channel[]): EscalationStep[] | null {
  if (!config.escalation) return null;
  const steps = config.escalation
    .filter((s) => templated.includes(s.channel))
    .map((s) => ({
      channel: s.channel,
      afterSeconds: s.after ? (parseDuration(s.after) ?? 0) : 0,
      unless: s.unless ?? [...DEFAULT_ESCALATION_UNLESS],
    }));
  return steps.length > 1 ? steps : null;
}

/** A planned delivery of an escalation: its step, and its own send time for a later step. */
export interface PlannedStep extends PlannedDelivery {
  step: number;
  sendAtMs?: number;
}

/**
 * One recipient's deliveries over the steps: the first step at once; each later one `after` the
 * acceptance, or at once when every earlier step found nothing to send (no address, suppressed),
 * since a failed earlier step brings the next forward.
 */
export function planEscalation(
  recipient: ResolvedRecipient,
  steps: readonly EscalationStep[],
  acceptedMs: number,
): PlannedStep[] {
  const planned: PlannedStep[] = [];
  let earlierReached = false;
  for (const [step, { channel, afterSeconds }] of steps.entries()) {
    const deliveries = planDeliveries(recipient, [channel], true);
    const due = acceptedMs + afterSeconds * 1000;
    for (const d of deliveries) {
      planned.push(step > 0 && earlierReached ? { ...d, step, sendAtMs: due } : { ...d, step });
    }
    earlierReached ||= deliveries.some((d) => !STEP_FAILED.has(d.status));
  }
  return planned;
}

/** The reason a later step shows while it waits. */
export function scheduledReason(step: EscalationStep, dueMs: number): string {
  return `escalation: ${step.channel} at ${new Date(dueMs).toISOString()} unless an earlier step is ${step.unless.join(', ')}`;
}
