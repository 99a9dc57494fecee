import { isDevelopment } from '../../config/env';
import type { Contact, DeviceToken, ExternalChannel } from '../../domain/contact';
import { parseWebPushSubscription } from '../../domain/contact-rules';
import { invalidField, notFound } from '../../domain/errors';
import { checkWebhookUrl } from '../../lib/ssrf-guard';
import type { ContactFields } from '../../storage/contacts-repo';
import type { Services } from '../container';

export interface ContactPatch {
  email?: string | null;
  phone?: string | null;
  deviceTokens?: DeviceToken[];
  externalChannels?: ExternalChannel[];
  locale?: string | null;
  timezone?: string | null;
}

/**
 * External channel URLs must be public https endpoints (the same SSRF guard the providers apply
 * before sending); loopback http is accepted only in development, for local fakes.
 */
export function checkChannelUrls(
  services: Services,
  channels: readonly ExternalChannel[] | undefined,
  prefix: string,
): void {
  const allowLoopback = isDevelopment(services.env);
  channels?.forEach((channel, index) => {
    if (!channel.url) return;
    const check = checkWebhookUrl(channel.url, { allowLoopback });
    if (!check.ok)
      throw invalidField(`${prefix}[${index}].url`, `must be a public https URL (${check.reason})`);
  });
}

/**
 * Web Push subscriptions are URLs Herald posts to: their endpoints pass the same SSRF guard as
 * channel URLs (and as the Web Push provider before sending), loopback only in development.
 * Tokens in `stored` are already the contact's and are not judged again (removing another token
 * must not fail on them). `field` names the token at an index in the request body.
 */
export function checkSubscriptionUrls(
  services: Services,
  tokens: readonly DeviceToken[] | undefined,
  field: (index: number) => string,
  stored: readonly DeviceToken[] = [],
): void {
  const allowLoopback = isDevelopment(services.env);
  const known = new Set(stored.map((token) => token.deviceToken));
  tokens?.forEach((token, index) => {
    if (token.platform !== 'webpush' || known.has(token.deviceToken)) return;
    const endpoint = parseWebPushSubscription(token.deviceToken)?.endpoint ?? '';
    const check = checkWebhookUrl(endpoint, { allowLoopback });
    if (!check.ok) {
      const message = `must be a push subscription with a public https endpoint (${check.reason})`;
      throw invalidField(field(index), message);
    }
  });
}

/** The field of the `index`th device token in a contact body. */
const tokenField = (index: number) => `deviceTokens[${index}].deviceToken`;

function dedupeTokens(tokens: readonly DeviceToken[]): DeviceToken[] {
  const seen = new Map<string, DeviceToken>();
  for (const token of tokens) seen.set(`${token.platform}:${token.deviceToken}`, token);
  return [...seen.values()];
}

/** PUT: the body replaces the contact; absent fields become empty. */
export async function replaceContact(
  services: Services,
  userId: string,
  input: ContactPatch,
): Promise<Contact> {
  checkChannelUrls(services, input.externalChannels, 'externalChannels');
  checkSubscriptionUrls(services, input.deviceTokens, tokenField);
  const fields: ContactFields = {
    email: input.email ?? null,
    phone: input.phone ?? null,
    deviceTokens: dedupeTokens(input.deviceTokens ?? []),
    externalChannels: input.externalChannels ?? [],
    locale: input.locale ?? null,
    timezone: input.timezone ?? null,
  };
  const existing = await services.contacts.get(userId);
  return services.contacts.put(userId, fields, services.now(), existing?.phone !== fields.phone);
}

/** PATCH: only the fields present change; `null` clears a field. */
export async function patchContact(
  services: Services,
  userId: string,
  patch: ContactPatch,
): Promise<Contact> {
  const existing = await services.contacts.get(userId);
  if (!existing) throw notFound(`contact ${userId}`);
  checkChannelUrls(services, patch.externalChannels, 'externalChannels');
  checkSubscriptionUrls(services, patch.deviceTokens, tokenField, existing.deviceTokens);
  const pick = <K extends keyof ContactPatch>(key: K, current: Contact[K]) =>
    (key in patch ? patch[key] : current) as Contact[K];
  const fields: ContactFields = {
    email: pick('email', existing.email) ?? null,
    phone: pick('phone', existing.phone) ?? null,
    deviceTokens: dedupeTokens(pick('deviceTokens', existing.deviceTokens) ?? []),
    externalChannels: pick('externalChannels', existing.externalChannels) ?? [],
    locale: pick('locale', existing.locale) ?? null,
    timezone: pick('timezone', existing.timezone) ?? null,
  };
  return services.contacts.put(userId, fields, services.now(), existing.phone !== fields.phone);
}

export async function addDeviceToken(
  services: Services,
  userId: string,
  token: DeviceToken,
): Promise<Contact> {
  const existing = await services.contacts.get(userId);
  if (!existing) throw notFound(`contact ${userId}`);
  checkSubscriptionUrls(services, [token], () => 'deviceToken', existing.deviceTokens);
  return patchContact(services, userId, { deviceTokens: [...existing.deviceTokens, token] });
}

export async function removeDeviceToken(
  services: Services,
  userId: string,
  deviceToken: string,
): Promise<Contact> {
  const existing = await services.contacts.get(userId);
  if (!existing) throw notFound(`contact ${userId}`);
  const remaining = existing.deviceTokens.filter((t) => t.deviceToken !== deviceToken);
  if (remaining.length === existing.deviceTokens.length) throw notFound('device token');
  return patchContact(services, userId, { deviceTokens: remaining });
}
