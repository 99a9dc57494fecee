import type { Channel } from '../../domain/channels';
import type { Contact } from '../../domain/contact';
import type { DeliveryToSend } from '../../domain/delivery';
import { groupBy } from '../../lib/collections';
import type { SendResult } from '../../providers/types';
import type { Services } from '../container';
import type { Cleanup, Pending } from './batch';

/** A permanent answer that proves an address dead cleans the contact, so it is not tried again. */
export function cleanupFor(
  delivery: DeliveryToSend,
  result: Extract<SendResult, { kind: 'permanent' }>,
): Cleanup | undefined {
  const { address, userId } = delivery;
  if (!address || !userId) return undefined;
  if (result.optOut && address.channel === 'sms') return { userId, kind: 'sms-opt-out' };
  if (!result.invalidAddress) return undefined;
  switch (address.channel) {
    case 'push':
      return { userId, kind: 'remove-token', target: address.deviceToken };
    case 'chat':
      return { userId, kind: 'disable-channel', target: address.url ?? address.chatId ?? '' };
    case 'webhook':
      return { userId, kind: 'disable-channel', target: address.url };
    default:
      return undefined;
  }
}

/**
 * Turns a batch's clean-ups into statements: one rewrite of each affected contact's (encrypted)
 * token and channel lists, computed from the contact as loaded for this batch.
 */
export async function cleanupStatements(
  services: Services,
  cleanups: readonly Cleanup[],
  contacts: ReadonlyMap<string, Contact>,
  now: number,
): Promise<D1PreparedStatement[]> {
  const statements: D1PreparedStatement[] = [];
  for (const [userId, list] of groupBy(cleanups, (c) => c.userId)) {
    if (list.some((c) => c.kind === 'sms-opt-out'))
      statements.push(services.contacts.optOutOfSms(userId, now));
    const contact = contacts.get(userId);
    const dead = new Set(list.flatMap((c) => (c.kind === 'remove-token' ? [c.target] : [])));
    const disabled = new Set(list.flatMap((c) => (c.kind === 'disable-channel' ? [c.target] : [])));
    if (!contact || (dead.size === 0 && disabled.size === 0)) continue;
    statements.push(
      await services.contacts.cleanupStatement(
        contact,
        {
          deviceTokens: contact.deviceTokens.filter((t) => !dead.has(t.deviceToken)),
          externalChannels: contact.externalChannels.map((ch) =>
            disabled.has(ch.url ?? '') || disabled.has(ch.chatId ?? '') ? { ...ch, status: false } : ch,
          ),
        },
        now,
      ),
    );
  }
  return statements;
}

/**
 * APNs answers `BadDeviceToken` for every token when the app's environment or topic is wrong;
 * pruning then would wipe every user's tokens. When every APNs answer of a batch (two or more)
 * says so, it is treated as a configuration error: the tokens are kept, and true is returned so
 * the caller alerts.
 */
export function spareMassPrune(channel: Channel, pending: ReadonlyMap<string, Pending>): boolean {
  if (channel !== 'push') return false;
  const apns = [...pending.values()].filter((p) => p.platform === 'apns' && p.outcome.attempted);
  if (apns.length < 2 || !apns.every((p) => p.code === 'BadDeviceToken')) return false;
  for (const p of apns) {
    p.cleanup = undefined;
    p.outcome.reason = `${p.outcome.reason ?? 'BadDeviceToken'} (every APNs token of the batch was refused: check APNS_ENVIRONMENT and APNS_TOPIC; tokens kept)`;
  }
  return true;
}
