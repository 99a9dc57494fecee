import type { Channel } from '../../domain/channels';
import type { Contact, InlineRecipient } from '../../domain/contact';
import { type PlannedDelivery, planDeliveries, type ResolvedRecipient } from '../../domain/delivery-plan';
import { AppError } from '../../domain/errors';
import { type EscalationStep, escalationOf, planEscalation, scheduledReason } from '../../domain/escalation';
import { isTopicRecipient, type TopicRecipient } from '../../domain/topics';
import type { TypeConfig } from '../../domain/type-config';
import type { Services } from '../container';

/** A recipient a notification names directly (not a topic). */
export type DirectRecipient = string | InlineRecipient;

/** How a notification of a type goes out: its channels, and its escalation steps if it has any. */
export interface Routing {
  channels: Channel[];
  /** Whether the producer named the channels (then each named one says why it was skipped). */
  explicit: boolean;
  escalation: ReturnType<typeof escalationOf>;
  config: TypeConfig;
}

/** A planned delivery with its own send time and escalation step, when it has them. */
export type Plan = PlannedDelivery & { sendAtMs?: number; escalation?: string };

/** The channels and steps of a type (422 when it has no template, or none for the named channels). */
export async function routingOf(
  services: Services,
  type: string,
  named?: readonly Channel[],
): Promise<Routing> {
  const templated = await services.templates.channelsOf(type);
  if (templated.length === 0) {
    throw new AppError(422, 'unknown_type', `type: no templates exist for notification type "${type}"`, [
      { field: 'type', message: 'no templates for this type' },
    ]);
  }
  const config = await services.templates.typeConfig(type);
  const explicit = named !== undefined;
  const wanted = named ?? config.channels;
  const channels = wanted ? templated.filter((c) => wanted.includes(c)) : templated;
  if (channels.length === 0) {
    throw new AppError(
      422,
      'no_channel',
      `channels: type "${type}" has no template for ${named?.join(', ')}`,
      [{ field: 'channels', message: `templated channels are ${templated.join(', ')}` }],
    );
  }
  return { channels, explicit, escalation: explicit ? null : escalationOf(config, templated), config };
}

/** Every delivery of these recipients: one per channel and address, or one per escalation step. */
export function planRecipients(
  recipients: readonly ResolvedRecipient[],
  routing: Routing,
  now: number,
): Plan[] {
  const { escalation } = routing;
  if (!escalation) return recipients.flatMap((r) => planDeliveries(r, routing.channels, routing.explicit));
  return recipients.flatMap((recipient) =>
    planEscalation(recipient, escalation, now).map(({ step, ...d }) => ({
      ...d,
      escalation: JSON.stringify({ step, unless: escalation[step]?.unless ?? [] }),
      ...(d.sendAtMs !== undefined
        ? { reason: scheduledReason(escalation[step] as EscalationStep, d.sendAtMs) }
        : {}),
    })),
  );
}

/** The recipients a notification names directly (its topic entries aside). */
export function directRecipients(
  recipients: readonly (DirectRecipient | TopicRecipient)[],
): DirectRecipient[] {
  return recipients.filter((r): r is DirectRecipient => !isTopicRecipient(r));
}

/** The user ids a notification names (plain ids and inline recipients with one). */
export function recipientUserIds(recipients: readonly DirectRecipient[]): string[] {
  return recipients.map((r) => (typeof r === 'string' ? r : r.userId)).filter((u): u is string => !!u);
}

/** Merges inline address fields over the contact's (contacts loaded once per request). */
export function resolveRecipients(
  recipients: readonly DirectRecipient[],
  contacts: ReadonlyMap<string, Contact>,
): ResolvedRecipient[] {
  return recipients.map((r) => {
    const inline: InlineRecipient = typeof r === 'string' ? { userId: r } : r;
    const contact: Contact | undefined = inline.userId ? contacts.get(inline.userId) : undefined;
    return {
      userId: inline.userId ?? null,
      known: contact !== undefined,
      email: inline.email ?? contact?.email ?? null,
      phone: inline.phone ?? contact?.phone ?? null,
      deviceTokens: inline.deviceTokens ?? contact?.deviceTokens ?? [],
      externalChannels: inline.externalChannels ?? contact?.externalChannels ?? [],
      smsOptedOut:
        contact?.smsOptedOut === true && (inline.phone === undefined || inline.phone === contact.phone),
    };
  });
}
