import type { Channel } from '../../domain/channels';
import type { DeliveryToSend } from '../../domain/delivery';
import { AppError, notFound } from '../../domain/errors';
import type { RenderedMessage } from '../../domain/message';
import { NO_PREFERENCES, type Preferences } from '../../domain/preferences';
import type { TypeConfig } from '../../domain/type-config';
import { signToken, verificationSecrets, verifyToken } from '../../lib/signed-token';
import type { Services } from '../container';
import { addressValue, suppressStatement } from '../recipients/suppressions';

export const UNSUBSCRIBE_PURPOSE = 'unsubscribe';

/** Channels whose messages carry an unsubscribe link. */
const UNSUBSCRIBABLE: ReadonlySet<Channel> = new Set(['email', 'sms']);

/**
 * The unsubscribe link of a delivery, or null when it has none (a required type, or no
 * PUBLIC_BASE_URL/SIGNING_SECRET). The token names only the delivery id, signed: it carries no
 * personal data, and the user, type and channel are looked up from the delivery it proves.
 */
export async function unsubscribeUrl(
  services: Services,
  delivery: { id: string; channel: Channel },
  config: TypeConfig,
): Promise<string | null> {
  const { PUBLIC_BASE_URL: base, SIGNING_SECRET: secret } = services.env;
  if (!base || !secret || config.preferences?.required || !UNSUBSCRIBABLE.has(delivery.channel)) return null;
  const token = await signToken(secret, UNSUBSCRIBE_PURPOSE, { d: delivery.id });
  return `${base.replace(/\/+$/, '')}/u/${token}`;
}

/**
 * Adds RFC 8058 one-click headers and a visible footer link to an email (unless the template
 * already shows the link), so every mailbox offers "unsubscribe" and every reader can find it.
 */
export function withUnsubscribe(message: RenderedMessage, url: string): RenderedMessage {
  const out: RenderedMessage = {
    ...message,
    headers: {
      ...message.headers,
      'List-Unsubscribe': `<${url}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
  };
  const escaped = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  if (message.html !== undefined && !message.html.includes(url) && !message.html.includes(escaped)) {
    const footer = `<p style="font-size:12px;color:#6b7280;margin-top:24px"><a href="${escaped}" data-no-track style="color:#6b7280">Unsubscribe</a></p>`;
    out.html = /<\/body>/i.test(message.html)
      ? message.html.replace(/<\/body>/i, `${footer}</body>`)
      : `${message.html}${footer}`;
  }
  if (message.text !== undefined && !message.text.includes(url))
    out.text = `${message.text}\n\nUnsubscribe: ${url}`;
  return out;
}

/** What an unsubscribe token is about. */
export interface UnsubscribeTarget {
  delivery: Pick<DeliveryToSend, 'id' | 'userId' | 'channel' | 'address' | 'type'>;
  required: boolean;
}

/** Resolves a token to its delivery; a forged, altered or unknown token is a 404, never a change. */
export async function readUnsubscribeToken(services: Services, token: string): Promise<UnsubscribeTarget> {
  // Signed with the current secret; links sent before a rotation verify with a previous one.
  const secrets = verificationSecrets(services.env.SIGNING_SECRET, services.env.SIGNING_SECRET_PREVIOUS);
  const payload = await verifyToken(secrets, UNSUBSCRIBE_PURPOSE, token, services.now());
  const deliveryId = typeof payload?.d === 'string' ? payload.d : null;
  if (!deliveryId) throw notFound('unsubscribe link');
  const delivery = (await services.deliveries.loadForSending([deliveryId])).get(deliveryId);
  if (!delivery) throw notFound('unsubscribe link');
  const config = await services.templates.typeConfig(delivery.type);
  return { delivery, required: config.preferences?.required === true };
}

/**
 * Unsubscribes: from this type on this channel (`type`, what one-click does) or from the whole
 * channel (`channel`). A known user's preferences change; a recipient without a user id goes on
 * the suppression list for that address. The delivery's history records `unsubscribed`.
 */
export async function unsubscribe(
  services: Services,
  target: UnsubscribeTarget,
  scope: 'type' | 'channel',
): Promise<void> {
  const { delivery } = target;
  if (target.required)
    throw new AppError(409, 'required_type', `${delivery.type} cannot be unsubscribed from`);
  const now = services.now();
  const statements: D1PreparedStatement[] = [];
  const reason =
    scope === 'type'
      ? `unsubscribed from ${delivery.type} by ${delivery.channel}`
      : `unsubscribed from all ${delivery.channel}`;
  if (delivery.userId) {
    const current: Preferences = (await services.preferences.get(delivery.userId)) ?? NO_PREFERENCES;
    const next: Preferences =
      scope === 'type'
        ? {
            ...current,
            types: {
              ...current.types,
              [delivery.type]: { ...current.types[delivery.type], [delivery.channel]: false },
            },
          }
        : { ...current, channels: { ...current.channels, [delivery.channel]: false } };
    statements.push(services.preferences.putStatement(delivery.userId, next, now));
  } else {
    const value = delivery.address ? addressValue(delivery.address) : null;
    if (value) statements.push(await suppressStatement(services, value, 'unsubscribed', now));
  }
  statements.push(
    ...services.events.applyStatements(
      [{ deliveryId: delivery.id, status: 'unsubscribed', reason, at: now }],
      now,
    ),
  );
  await services.commit(statements);
}
