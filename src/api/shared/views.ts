import type { Context } from 'hono';
import type { Delivery } from '../../domain/delivery';
import { type AddressView, type AddressVisibility, viewOptionalAddress } from '../../domain/masking';
import { grants } from './scopes';
import type { AppEnv } from './types';

/**
 * Who sees what (the rules are in src/domain/masking.ts): a key holding `contacts:read` (or admin)
 * sees addresses whole, any other key masked. No view ever holds a webhook signing secret.
 */
export function addressVisibility(c: Context<AppEnv>): AddressVisibility {
  const principal = c.get('apiKey');
  return principal && grants(principal.scopes, 'contacts:read') ? 'whole' : 'masked';
}

/** A delivery as the API shows it: its address through the caller's view. */
export type DeliveryView = Omit<Delivery, 'address'> & { address: AddressView | null };

export function viewDelivery(delivery: Delivery, visibility: AddressVisibility): DeliveryView {
  return { ...delivery, address: viewOptionalAddress(delivery.address, visibility) };
}
