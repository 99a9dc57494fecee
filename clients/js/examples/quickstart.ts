import { type HeraldClient, unwrap } from '../src/index';

/** Where each delivery of the notification stands. */
export interface QuickstartResult {
  notificationId: string;
  deliveries: { channel: string; status: string }[];
}

/** Saves where to reach a user: PUT creates or replaces the contact; sends then name only the id. */
export async function saveContact(herald: HeraldClient, userId: string, email: string): Promise<void> {
  await unwrap(
    herald.PUT('/v1/contacts/{userId}', {
      params: { path: { userId } },
      body: { email, locale: 'en', timezone: 'Europe/London' },
    }),
  );
}

/**
 * Sends a notification of a type (its templates and channels: templates/order_shipped) to users by
 * id; `data` fills the templates. Herald answers 202 once every delivery is queued.
 */
export async function sendOrderShipped(herald: HeraldClient, userIds: string[], orderId: string) {
  return unwrap(
    herald.POST('/v1/notifications', {
      body: { type: 'order_shipped', recipients: userIds, data: { order_id: orderId, carrier: 'DHL' } },
    }),
  );
}

/** Reads a notification back with each delivery's status and history. */
export async function readStatus(herald: HeraldClient, notificationId: string): Promise<QuickstartResult> {
  const notification = await unwrap(
    herald.GET('/v1/notifications/{id}', { params: { path: { id: notificationId } } }),
  );
  return {
    notificationId: notification.id,
    deliveries: notification.deliveries.map(({ channel, status }) => ({ channel, status })),
  };
}

/** Herald's first three calls: a contact, a notification to them, its status. */
export async function quickstart(herald: HeraldClient, userId: string): Promise<QuickstartResult> {
  await saveContact(herald, userId, 'ada@example.com');
  const accepted = await sendOrderShipped(herald, [userId], 'A-1042');
  return readStatus(herald, accepted.id);
}
