import type { Address } from '../../domain/address';
import type { Contact } from '../../domain/contact';
import type { DeliveryToSend } from '../../domain/delivery';
import type { RenderedMessage } from '../../domain/message';
import type { TypeConfig } from '../../domain/type-config';
import type { Services } from '../container';
import { renderTemplate, TemplateError } from '../templates/render';
import { trackMessage } from '../tracking/opens-and-clicks';
import { unsubscribeUrl, withUnsubscribe } from '../tracking/unsubscribe';

/** A message ready for the providers, or why there can be none. */
export type Composed =
  | { ok: true; message: RenderedMessage; address: Address; templateVersion: string }
  | { ok: false; reason: string };

/**
 * The message one delivery sends: its template (R2, cached) in the contact's locale, rendered with
 * LiquidJS, with unsubscribe headers and footer (email) and click/open tracking links.
 */
export async function composeMessage(
  services: Services,
  delivery: DeliveryToSend,
  contact: Contact | undefined,
  config: TypeConfig,
  /** More for the template to see (a digest's items). */
  extra: Record<string, unknown> = {},
): Promise<Composed> {
  const address = delivery.address;
  if (!address) return { ok: false, reason: 'delivery has no address' };
  const template = await services.templates.get(delivery.type, delivery.channel, contact?.locale);
  if (!template) return { ok: false, reason: `no ${delivery.channel} template for type ${delivery.type}` };
  const unsubscribe = await unsubscribeUrl(services, delivery, config);
  let message: RenderedMessage;
  try {
    message = await renderTemplate(template, {
      ...renderContext(delivery, address, contact),
      ...extra,
      unsubscribe_url: unsubscribe,
    });
  } catch (error) {
    const reason =
      error instanceof TemplateError ? `template error in ${error.part}: ${error.message}` : String(error);
    return { ok: false, reason };
  }
  if (unsubscribe && delivery.channel === 'email') message = withUnsubscribe(message, unsubscribe);
  message = await trackMessage(services, delivery, message, config);
  return { ok: true, message, address, templateVersion: template.version };
}

/** The data a template sees: the notification's data, plus the recipient and ids. */
function renderContext(
  delivery: DeliveryToSend,
  address: Address,
  contact: Contact | undefined,
): Record<string, unknown> {
  return {
    ...delivery.data,
    data: delivery.data,
    recipient: {
      userId: delivery.userId,
      email: address.channel === 'email' ? address.email : (contact?.email ?? null),
      phone: address.channel === 'sms' ? address.phone : (contact?.phone ?? null),
      locale: contact?.locale ?? null,
      timezone: contact?.timezone ?? null,
    },
    notification: { id: delivery.notificationId, type: delivery.type, priority: delivery.priority },
    delivery: { id: delivery.id, channel: delivery.channel },
  };
}
