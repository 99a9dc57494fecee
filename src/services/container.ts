import type { Env } from '../config/env';
import { chatProviders } from '../providers/chat';
import { emailProviders } from '../providers/email';
import { inappProviders } from '../providers/inapp';
import { pushProviders } from '../providers/push';
import { ProviderRegistry } from '../providers/registry';
import { smsProviders } from '../providers/sms';
import type { ProviderDefinition } from '../providers/types';
import { webhookProviders } from '../providers/webhook';
import { ApiKeysRepo } from '../storage/api-keys-repo';
import { D1ReplayGuard } from '../storage/events-repo';
import { commitAcross, ShardRouter } from '../storage/shard-router';
import { ShardedDeliveries } from '../storage/sharded-deliveries';
import {
  ShardedCounters,
  ShardedEvents,
  ShardedOperations,
  ShardedOutbox,
  ShardedStats,
} from '../storage/sharded-records';
import { ShardedContacts, ShardedPreferences, ShardedUserKeys } from '../storage/sharded-user-data';
import { SuppressionsRepo } from '../storage/suppressions-repo';
import { TemplatesStore } from '../storage/templates-store';
import { ShardedTopicSubscriptions, TopicSendsRepo, TopicsRepo } from '../storage/topics-repo';
import { cipherFor } from './encryption';
import { withConsumerWriteFaults, withTemplateReadFaults } from './fault-injection';

/** Every real provider Herald ships, by channel. `sandbox` is built in by the registry. */
export const allProviders: readonly ProviderDefinition[] = [
  ...emailProviders,
  ...smsProviders,
  ...pushProviders,
  ...chatProviders,
  ...webhookProviders,
  ...inappProviders,
];

/**
 * One registry per isolate: provider instances (with their token caches) and circuit breakers,
 * shared by the queue consumer that sends and the admin API and dashboard that report on them.
 */
export const providerRegistry = new ProviderRegistry(allProviders);

/**
 * What every use case needs, built once per request (or queue batch) from the Worker's env: the
 * repositories (the only code with SQL or R2 keys), the provider registry and the clock.
 */
export interface Services {
  env: Env;
  now: () => number;
  registry: ProviderRegistry;
  /** Which database holds what: the home database and the shards a user's data lives in. */
  router: ShardRouter;
  apiKeys: ApiKeysRepo;
  contacts: ShardedContacts;
  deliveries: ShardedDeliveries;
  operations: ShardedOperations;
  outbox: ShardedOutbox;
  preferences: ShardedPreferences;
  userKeys: ShardedUserKeys;
  stats: ShardedStats;
  /** The monotonic counters of every database (`GET /metrics`). */
  counters: ShardedCounters;
  suppressions: SuppressionsRepo;
  templates: TemplatesStore;
  events: ShardedEvents;
  /** Topics (home), their subscribers (each in the user's database) and the sends to them (home). */
  topics: TopicsRepo;
  topicSubscriptions: ShardedTopicSubscriptions;
  topicSends: TopicSendsRepo;
  /** Provider callback replay keys; per request, since it remembers the keys this request spent. */
  callbackReplays: D1ReplayGuard;
  /**
   * Runs statements of several repositories: one atomic D1 batch per database they belong to
   * (atomic within a database, not across databases; nothing for an empty list). Answers each
   * statement's result, in their order.
   */
  commit: (statements: D1PreparedStatement[]) => Promise<D1Result[]>;
}

/** Who the services are for: the queue consumer's writes may carry injected faults (development). */
export interface ServiceOptions {
  consumer?: boolean;
}

/**
 * Templates are cached per isolate: the store outlives requests, keyed by its bucket binding;
 * each request gets a view of it that shares reads in flight only with itself.
 */
const templateStores = new WeakMap<R2Bucket, TemplatesStore>();

function templatesFor(bucket: R2Bucket): TemplatesStore {
  let store = templateStores.get(bucket);
  if (!store) {
    store = new TemplatesStore(bucket);
    templateStores.set(bucket, store);
  }
  return store;
}

/** One router per env object: the shard map is parsed once per isolate. */
const routers = new WeakMap<Env, ShardRouter>();

function routerFor(env: Env): ShardRouter {
  let router = routers.get(env);
  if (!router) {
    router = new ShardRouter(env);
    routers.set(env, router);
  }
  return router;
}

export function createServices(env: Env, options: ServiceOptions = {}): Services {
  const now = () => Date.now();
  const cipher = () => cipherFor(env);
  const router = routerFor(env);
  const home = router.home.db;
  const commitToD1 = async (statements: D1PreparedStatement[]) => {
    return statements.length > 0 ? commitAcross(statements, home) : [];
  };
  return {
    env,
    now,
    registry: providerRegistry,
    router,
    apiKeys: new ApiKeysRepo(home),
    contacts: new ShardedContacts(router, cipher),
    deliveries: new ShardedDeliveries(router, cipher),
    operations: new ShardedOperations(router),
    outbox: new ShardedOutbox(router),
    preferences: new ShardedPreferences(router),
    userKeys: new ShardedUserKeys(router, cipher),
    stats: new ShardedStats(router),
    counters: new ShardedCounters(router),
    suppressions: new SuppressionsRepo(home),
    templates: templatesFor(
      options.consumer ? withTemplateReadFaults(env, env.TEMPLATES) : env.TEMPLATES,
    ).forRequest(),
    events: new ShardedEvents(router),
    topics: new TopicsRepo(home),
    topicSubscriptions: new ShardedTopicSubscriptions(router),
    topicSends: new TopicSendsRepo(home, cipher),
    callbackReplays: new D1ReplayGuard(home, now),
    commit: options.consumer ? withConsumerWriteFaults(env, commitToD1) : commitToD1,
  };
}
