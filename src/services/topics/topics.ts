import { notFound } from '../../domain/errors';
import type { Topic } from '../../domain/topics';
import type { Subscription } from '../../storage/topics-repo';
import type { Services } from '../container';

/** Subscriptions one removal step deletes per database when a topic goes. */
const REMOVE_PAGE = 1000;

/** Creates a topic or renames it (a name left out keeps the one it has). */
export function putTopic(
  services: Services,
  key: string,
  input: { name?: string | null },
): Promise<{ topic: Topic; created: boolean }> {
  return services.topics.put(key, input.name, services.now());
}

export function getTopic(services: Services, key: string): Promise<Topic | null> {
  return services.topics.get(key);
}

/** A topic with how many follow it (counted over every database); 404 when there is none. */
export async function describeTopic(
  services: Services,
  key: string,
): Promise<Topic & { subscribers: number }> {
  const topic = await requireTopic(services, key);
  return { ...topic, subscribers: await services.topicSubscriptions.count(key) };
}

async function requireTopic(services: Services, key: string): Promise<Topic> {
  const topic = await services.topics.get(key);
  if (!topic) throw notFound(`topic ${key}`);
  return topic;
}

/** A page of topics in key order. */
export async function listTopics(
  services: Services,
  after: string | undefined,
  limit: number,
): Promise<{ topics: Topic[]; next: string | null }> {
  const topics = await services.topics.list(after, limit + 1);
  const page = topics.slice(0, limit);
  return { topics: page, next: topics.length > limit ? (page.at(-1)?.key ?? null) : null };
}

/**
 * Deletes a topic and its subscriptions. The topic row goes first, so a send naming it from then on
 * is refused; an expansion already running reaches whatever subscriptions are not removed yet.
 */
export async function deleteTopic(services: Services, key: string): Promise<void> {
  if (!(await services.topics.delete(key))) throw notFound(`topic ${key}`);
  await services.topicSubscriptions.removeTopic(key, REMOVE_PAGE);
}

/** Subscribes users to an existing topic (404 otherwise); a repeat changes nothing. */
export async function subscribe(
  services: Services,
  key: string,
  userIds: readonly string[],
): Promise<{ added: number }> {
  await requireTopic(services, key);
  return { added: await services.topicSubscriptions.subscribe(key, userIds, services.now()) };
}

export async function unsubscribe(
  services: Services,
  key: string,
  userIds: readonly string[],
): Promise<{ removed: number }> {
  await requireTopic(services, key);
  return { removed: await services.topicSubscriptions.unsubscribe(key, userIds) };
}

/** A page of a topic's subscribers in user-id order, over every database. */
export async function listSubscribers(
  services: Services,
  key: string,
  after: string | undefined,
  limit: number,
): Promise<{ subscribers: Subscription[]; next: string | null }> {
  await requireTopic(services, key);
  const found = await services.topicSubscriptions.page(key, after, limit + 1);
  const page = found.slice(0, limit);
  return { subscribers: page, next: found.length > limit ? (page.at(-1)?.userId ?? null) : null };
}
