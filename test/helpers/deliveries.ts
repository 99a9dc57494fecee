import type { z } from '@hono/zod-openapi';
import type { NotificationSchema } from '../../src/api/shared/schemas';
import type { Env } from '../../src/config/env';
import type { Address } from '../../src/domain/address';
import type { Delivery } from '../../src/domain/delivery';
import { newId } from '../../src/lib/ids';
import { createServices } from '../../src/services/container';
import { api, json, testEnv, uniqueUser } from './api';

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

/** A notification as GET /v1/notifications/{id} shows it, and one of its deliveries. */
export type NotificationView = z.infer<typeof NotificationSchema>;
export type DeliveryView = NotificationView['deliveries'][number];

/** The deliveries of a notification, as the API shows them, in planned order. */
export async function readDeliveries(notificationId: string): Promise<DeliveryView[]> {
  const res = await api('GET', `/v1/notifications/${notificationId}`);
  if (res.status !== 200) throw new Error(`GET /v1/notifications/${notificationId}: ${res.status}`);
  return (await json<NotificationView>(res)).deliveries;
}

/** One delivery of a notification (the first by default), as the API shows it. */
export async function readDelivery(notificationId: string, index = 0): Promise<DeliveryView> {
  const found = (await readDeliveries(notificationId))[index];
  if (!found) throw new Error(`no delivery ${index} in ${notificationId}`);
  return found;
}

/** A message the sandbox provider captured, as GET /v1/outbox lists it. */
export interface OutboxEntry {
  deliveryId: string;
  notificationId: string;
  userId: string | null;
  channel: string;
  message: {
    subject?: string;
    text?: string;
    html?: string;
    title?: string;
    body?: string;
    headers?: Record<string, string>;
  };
}

/** The sandbox outbox filtered by `query` (userId, notificationId, channel), newest first. */
export async function readOutbox(query: Record<string, string>, env?: Env): Promise<OutboxEntry[]> {
  const res = await api('GET', `/v1/outbox?${new URLSearchParams(query)}`, undefined, { env });
  if (res.status !== 200) throw new Error(`GET /v1/outbox: ${res.status}`);
  return (await json<{ data: OutboxEntry[] }>(res)).data;
}
