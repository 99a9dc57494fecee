import { type HeraldClient, unwrap } from '../src/index';

/** Where each delivery of the first notification stands, and what the topic send was answered. */
export interface QuickstartResult {
  notificationId: string;
  deliveries: { channel: string; status: string }[];
  followers: { notificationId: string; topics: string[] };
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
export async function readStatus(herald: HeraldClient, notificationId: string) {
  const notification = await unwrap(
    herald.GET('/v1/notifications/{id}', { params: { path: { id: notificationId } } }),
  );
  return {
    notificationId: notification.id,
    deliveries: notification.deliveries.map(({ channel, status }) => ({ channel, status })),
  };
}

/**
 * Tells everyone following a project about a new comment, in their in-app inbox
 * (templates/new_comment): the topic is created (or kept) and the followers subscribed, then one
 * recipient `{ topic }` reaches each subscriber once, the comment's author (`actor`) aside. Herald
 * answers before it expands the topic through its queues: `topics` names it, and the subscribers'
 * deliveries join the notification moments later.
 */
export async function notifyFollowers(
  herald: HeraldClient,
  projectId: string,
  followerIds: string[],
  authorId: string,
) {
  const key = `project_${projectId}_followers`;
  await unwrap(
    herald.PUT('/v1/topics/{key}', {
      params: { path: { key } },
      body: { name: `Followers of project ${projectId}` },
    }),
  );
  await unwrap(
    herald.POST('/v1/topics/{key}/subscribers', {
      params: { path: { key } },
      body: { userIds: [...followerIds, authorId] },
    }),
  );
  const accepted = await unwrap(
    herald.POST('/v1/notifications', {
      body: {
        type: 'new_comment',
        recipients: [{ topic: key }],
        actor: authorId,
        data: { author: 'Ada', subject: `project ${projectId}`, excerpt: 'Shipped in 1.2!' },
      },
    }),
  );
  return { notificationId: accepted.id, topics: accepted.topics ?? [] };
}

/** Herald's first calls: a contact, a notification to them, its status, then a send to a topic. */
export async function quickstart(herald: HeraldClient, userId: string): Promise<QuickstartResult> {
  await saveContact(herald, userId, 'ada@example.com');
  const accepted = await sendOrderShipped(herald, [userId], 'A-1042');
  const status = await readStatus(herald, accepted.id);
  const followers = await notifyFollowers(herald, '42', [userId], `${userId}_author`);
  return { ...status, followers };
}
