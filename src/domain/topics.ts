import type { Channel, Priority } from './channels';

/** A named group of users a notification can be sent to. */
export interface Topic {
  key: string;
  name: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A recipient entry naming a topic: every subscriber, less `exclude`. */
export interface TopicRecipient {
  topic: string;
  exclude?: string[];
}

/** A topic of a send, with the users it leaves out. */
export interface TopicTarget {
  topic: string;
  exclude: string[];
}

/** A notification sent to topics, as its expansion reads it. */
export interface TopicSend {
  notificationId: string;
  createdAtMs: number;
  requestHash: string;
  type: string;
  source: string | null;
  priority: Priority;
  data: Record<string, unknown>;
  channels: Channel[] | null;
  sendAtMs: number | null;
  dedupeKey: string | null;
  cancelKey: string | null;
  topics: TopicTarget[];
  /** Users no topic reaches: the actor and the users the notification names directly. */
  skip: string[];
  canceledAtMs?: number | null;
  /** The database layout its expansion runs under (see ShardRouter.layout). */
  layout: string;
}

/** Most users one subscribe or unsubscribe call takes. */
export const MAX_SUBSCRIBERS_PER_CALL = 1000;

/** Subscribers one expansion step plans (one page per database, one D1 commit). */
export const EXPANSION_PAGE = 250;

export function isTopicRecipient(recipient: unknown): recipient is TopicRecipient {
  return typeof recipient === 'object' && recipient !== null && 'topic' in recipient;
}

/**
 * The users of one expansion page: the union of each topic's page (a user in several topics once),
 * less each topic's exclusions and the send's skip list, in user-id order, cut where the shortest
 * full page ended so that no topic's later subscribers are passed over. Returns the users and where
 * the next page starts (null: every topic is done).
 */
export function mergeTopicPages(
  targets: readonly TopicTarget[],
  pages: readonly string[][],
  skip: ReadonlySet<string>,
  pageSize: number,
): { userIds: string[]; next: string | null } {
  // A full page may have more after it: nothing past its last user is known yet.
  const ends = pages.filter((p) => p.length >= pageSize).map((p) => p.at(-1) as string);
  const cut = ends.length > 0 ? (ends.sort()[0] as string) : null;
  const chosen = new Set<string>();
  targets.forEach((target, i) => {
    const excluded = new Set(target.exclude);
    for (const userId of pages[i] ?? []) {
      if (cut !== null && userId > cut) break;
      if (!excluded.has(userId) && !skip.has(userId)) chosen.add(userId);
    }
  });
  return { userIds: [...chosen].sort(), next: cut };
}
