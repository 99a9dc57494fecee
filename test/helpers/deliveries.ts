import type { Address } from '../../src/domain/address';
import type { Delivery } from '../../src/domain/delivery';
import { newId } from '../../src/lib/ids';
import { createServices } from '../../src/services/container';
import { testEnv, uniqueUser } from './api';

const repo = () => createServices(testEnv).deliveries;

/** A delivery a provider accepted: written `created`, then recorded `sent`. Returns its id. */
export async function sentDelivery(
  address: Address = { channel: 'email', email: 'ada@example.com' },
  provider = 'sandbox',
): Promise<string> {
  const now = Date.now();
  const id = newId('dlv', now);
  const notificationId = `ntf_${id.slice(4)}`;
  await testEnv.DB.batch(
    await repo().insertStatements(
      {
        id: notificationId,
        type: 'payment_reminder',
        source: null,
        priority: 'normal',
        data: {},
        channels: null,
        sendAtMs: null,
        dedupeKey: null,
        requestHash: 'test',
        producerKey: false,
      },
      [{ id, notificationId, userId: uniqueUser(), channel: address.channel, address, status: 'created' }],
      now,
    ),
  );
  await repo().outcomeStatement({ deliveryId: id, status: 'sent', provider, attempted: true }, now).run();
  return id;
}

/** One delivery as stored. */
export async function delivery(id: string): Promise<Delivery> {
  const [found] = await repo().getDeliveries([id]);
  if (!found) throw new Error(`no delivery ${id}`);
  return found;
}
