import type { Topic } from '../../domain/topics';
import type { Services } from '../container';
import { getTopic, putTopic, subscribe } from '../topics/topics';

/*
 * Novu's topics are Herald's (services/topics/topics.ts): `POST /v2/topics` creates or renames one,
 * `POST /v2/topics/{topicKey}/subscriptions` subscribes users, creating the topic first when it does
 * not exist, as Novu does. A topic's `data` has no place in Herald: it is not stored.
 */

/** Novu's TopicResponseDto. Novu's `name` is a string or absent, never null. */
export interface NovuTopicView {
  _id: string;
  key: string;
  name?: string;
  createdAt: string;
  updatedAt: string;
}

export function topicView(topic: Topic): NovuTopicView {
  return {
    _id: topic.key,
    key: topic.key,
    ...(topic.name !== null ? { name: topic.name } : {}),
    createdAt: topic.createdAt,
    updatedAt: topic.updatedAt,
  };
}

/** Creates or renames a topic; with `failIfExists` an existing one is returned untouched. */
export async function upsertNovuTopic(
  services: Services,
  key: string,
  name: string | undefined,
  failIfExists: boolean,
): Promise<{ topic: Topic; created: boolean } | { exists: Topic }> {
  if (failIfExists) {
    const existing = await getTopic(services, key);
    if (existing) return { exists: existing };
  }
  return putTopic(services, key, name === undefined ? {} : { name });
}

/** One of Novu's SubscriptionResponseDto: Herald keeps a subscription as (topic, user). */
export interface NovuSubscriptionView {
  _id: string;
  identifier: string;
  topic: { _id: string; key: string; name?: string };
  subscriber: { _id: string; subscriberId: string };
  createdAt: string;
  updatedAt: string;
}

/**
 * Subscribes users to a topic, creating it first (named `name`) when there is none. Every user id
 * is subscribed, with or without a contact (a subscriber without addresses is reached by nothing);
 * a repeat changes nothing. The answer lists each one.
 */
export async function subscribeToNovuTopic(
  services: Services,
  key: string,
  userIds: readonly string[],
  name: string | undefined,
): Promise<{ subscriptions: NovuSubscriptionView[]; added: number }> {
  const topic =
    (await getTopic(services, key)) ?? (await putTopic(services, key, { name: name ?? null })).topic;
  const { added } = await subscribe(services, key, userIds);
  const at = new Date(services.now()).toISOString();
  const { _id, name: topicName } = topicView(topic);
  const subscriptions = [...new Set(userIds)].map((userId) => ({
    _id: `${key}:${userId}`,
    identifier: `${key}:${userId}`,
    topic: { _id, key, ...(topicName !== undefined ? { name: topicName } : {}) },
    subscriber: { _id: userId, subscriberId: userId },
    createdAt: at,
    updatedAt: at,
  }));
  return { subscriptions, added };
}
