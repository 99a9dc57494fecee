import type { Address } from './address';
import type { Contact, ExternalChannel } from './contact';
import { parseWebPushSubscription } from './contact-rules';

/**
 * Who sees what of an address. Pure rules, one place:
 *
 * - `whole` (keys with `contacts:read`, and admin): every address as stored.
 * - `masked` (every other key that can read deliveries: `notifications:read`): enough to tell
 *   which address a delivery went to, not enough to use it:
 *     email          `a***@example.com`     first character of the local part, the domain
 *     phone          `+1415***0123`         the country code side and the last digits, at most
 *                                           4 each and never more than (digits - 3) / 2 each
 *     device token   `***a1b2c3`            the last 6 characters (APNs, FCM)
 *     web push       `https://fcm.googleapis.com/***`   the push service's host only (the token
 *                                           is JSON holding the subscription's keys)
 *     chat/webhook URL `https://hooks.slack.com/***`    the host only (the path is the secret)
 *     Telegram chat  `***6789`              the last 4 characters
 * - In BOTH views a webhook's signing secret (`whsec_…`) is never shown: `secretSet` says whether
 *   one is configured. No route returns a secret's value, for any scope.
 */

export type AddressVisibility = 'whole' | 'masked';

/** What replaces a hidden part. */
export const MASK = '***';

/** An address as an API key may see it: a webhook's secret is replaced by `secretSet`. */
export type AddressView =
  | Exclude<Address, { channel: 'webhook' }>
  | { channel: 'webhook'; url: string; secretSet: boolean };

/** A chat or webhook destination as an API key may see it. */
export type ExternalChannelView = Omit<ExternalChannel, 'secret'> & { secretSet?: boolean };

export type ContactView = Omit<Contact, 'externalChannels'> & { externalChannels: ExternalChannelView[] };

/** `a***@example.com`: the first character of the local part and the domain. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1 || at === email.length - 1) return MASK;
  return `${email.slice(0, 1)}${MASK}@${email.slice(at + 1)}`;
}

/** `+1415***0123`: at most 4 digits each side, and at least 3 digits (and half of them) hidden. */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  const keep = Math.min(4, Math.floor((digits.length - 3) / 2));
  if (keep < 1) return MASK;
  const plus = phone.trim().startsWith('+') ? '+' : '';
  return `${plus}${digits.slice(0, keep)}${MASK}${digits.slice(-keep)}`;
}

/** `https://hooks.slack.com/***`: the scheme and host, never the path, query or credentials. */
export function maskUrl(url: string | undefined): string {
  if (!url) return MASK;
  try {
    const parsed = new URL(url);
    if (!parsed.host) return MASK;
    return `${parsed.protocol}//${parsed.host}/${MASK}`;
  } catch {
    return MASK;
  }
}

/** `***a1b2c3`: the last 6 characters of a token of at least 12 (a shorter one is hidden whole). */
export function maskDeviceToken(token: string, platform?: string): string {
  if (platform === 'webpush' || token.trimStart().startsWith('{')) {
    const endpoint = parseWebPushSubscription(token)?.endpoint;
    return endpoint ? maskUrl(endpoint) : MASK;
  }
  return token.length >= 12 ? `${MASK}${token.slice(-6)}` : MASK;
}

/** `***6789`: the last 4 characters of a Telegram chat id or username of at least 8. */
export function maskChatId(chatId: string): string {
  return chatId.length >= 8 ? `${MASK}${chatId.slice(-4)}` : MASK;
}

/** A delivery's address for a reader: whole or masked, and never a webhook secret. */
export function viewAddress(address: Address, visibility: AddressVisibility): AddressView {
  const masked = visibility === 'masked';
  switch (address.channel) {
    case 'email':
      return masked ? { channel: 'email', email: maskEmail(address.email) } : { ...address };
    case 'sms':
      return masked ? { channel: 'sms', phone: maskPhone(address.phone) } : { ...address };
    case 'push':
      return masked
        ? { ...address, deviceToken: maskDeviceToken(address.deviceToken, address.platform) }
        : { ...address };
    case 'chat': {
      if (!masked) return { ...address };
      const { url, chatId, ...rest } = address;
      return {
        ...rest,
        ...(url !== undefined ? { url: maskUrl(url) } : {}),
        ...(chatId !== undefined ? { chatId: maskChatId(chatId) } : {}),
      };
    }
    case 'webhook':
      return {
        channel: 'webhook',
        url: masked ? maskUrl(address.url) : address.url,
        secretSet: typeof address.secret === 'string' && address.secret !== '',
      };
    case 'inapp':
      return { ...address };
  }
}

/** `viewAddress` for a value that may be absent (an erased or unreadable row). */
export function viewOptionalAddress(
  address: Address | null,
  visibility: AddressVisibility,
): AddressView | null {
  return address ? viewAddress(address, visibility) : null;
}

/** A contact's chat or webhook destination: a webhook's secret becomes `secretSet`. */
export function viewExternalChannel(
  channel: ExternalChannel,
  visibility: AddressVisibility,
): ExternalChannelView {
  const { secret, ...rest } = channel;
  const view: ExternalChannelView =
    visibility === 'masked'
      ? {
          ...rest,
          ...(rest.url !== undefined ? { url: maskUrl(rest.url) } : {}),
          ...(rest.chatId !== undefined ? { chatId: maskChatId(rest.chatId) } : {}),
        }
      : rest;
  if (channel.platform === 'webhook') view.secretSet = typeof secret === 'string' && secret !== '';
  return view;
}

/** A contact for a reader: whole or masked, and never a webhook secret. */
export function viewContact(contact: Contact, visibility: AddressVisibility): ContactView {
  const masked = visibility === 'masked';
  return {
    ...contact,
    email: masked && contact.email !== null ? maskEmail(contact.email) : contact.email,
    phone: masked && contact.phone !== null ? maskPhone(contact.phone) : contact.phone,
    deviceTokens: contact.deviceTokens.map((token) =>
      masked ? { ...token, deviceToken: maskDeviceToken(token.deviceToken, token.platform) } : { ...token },
    ),
    externalChannels: contact.externalChannels.map((channel) => viewExternalChannel(channel, visibility)),
  };
}
