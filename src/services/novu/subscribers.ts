import type { Contact } from '../../domain/contact';
import type { Services } from '../container';
import { type ContactPatch, patchContact, replaceContact } from '../recipients/contacts';

/*
 * Novu's subscriber is Herald's contact. `POST /v2/subscribers` creates or updates one: the fields
 * a Novu subscriber and a Herald contact share (email, phone, locale, timezone) are written when
 * the body carries them (null clears one), and everything else the contact holds (device tokens,
 * chat and webhook channels, which a Novu body cannot name) is kept. Names, avatar and `data` have
 * no place in a contact: they are not stored, and the answer leaves them out.
 */

/** The contact fields a Novu subscriber body can set. */
export type SubscriberFields = Pick<ContactPatch, 'email' | 'phone' | 'locale' | 'timezone'>;

/** Novu's SubscriberResponseDto, with what Herald holds. */
export interface SubscriberView {
  _id: string;
  subscriberId: string;
  email: string | null;
  phone: string | null;
  locale: string | null;
  timezone: string | null;
  /** Novu's organization and environment: a Herald deployment is one of each. */
  _organizationId: string;
  _environmentId: string;
  deleted: false;
  createdAt: string;
  updatedAt: string;
}

/** What `_organizationId` and `_environmentId` say: Herald has no organizations or environments. */
export const HERALD_TENANT = 'herald';

export function subscriberView(contact: Contact): SubscriberView {
  return {
    _id: contact.userId,
    subscriberId: contact.userId,
    email: contact.email,
    phone: contact.phone,
    locale: contact.locale,
    timezone: contact.timezone,
    _organizationId: HERALD_TENANT,
    _environmentId: HERALD_TENANT,
    deleted: false,
    createdAt: contact.createdAt,
    updatedAt: contact.updatedAt,
  };
}

export type UpsertOutcome =
  | { created: boolean; contact: Contact }
  /** `failIfExists` and the subscriber exists: nothing was written. */
  | { exists: Contact };

/** Creates the contact, or changes the fields the body carries; see the file's comment. */
export async function upsertSubscriber(
  services: Services,
  subscriberId: string,
  fields: SubscriberFields,
  failIfExists: boolean,
): Promise<UpsertOutcome> {
  const existing = await services.contacts.get(subscriberId);
  if (existing && failIfExists) return { exists: existing };
  if (!existing) return { created: true, contact: await replaceContact(services, subscriberId, fields) };
  return { created: false, contact: await patchContact(services, subscriberId, fields) };
}
