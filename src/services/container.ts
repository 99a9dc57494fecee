import type { Env } from '../config/env';
import { chatProviders } from '../providers/chat';
import { emailProviders } from '../providers/email';
import { pushProviders } from '../providers/push';
import { ProviderRegistry } from '../providers/registry';
import { smsProviders } from '../providers/sms';
import type { ProviderDefinition } from '../providers/types';
import { webhookProviders } from '../providers/webhook';
import { ApiKeysRepo } from '../storage/api-keys-repo';
import { ContactsRepo } from '../storage/contacts-repo';
import { DeliveriesRepo } from '../storage/deliveries-repo';
import { D1ReplayGuard, EventsRepo } from '../storage/events-repo';
import { OperationsRepo } from '../storage/operations-repo';
import { OutboxRepo } from '../storage/outbox-repo';
import { PreferencesRepo } from '../storage/preferences-repo';
import { StatsRepo } from '../storage/stats-repo';
import { SuppressionsRepo } from '../storage/suppressions-repo';
import { TemplatesStore } from '../storage/templates-store';
import { cipherFor } from './encryption';
import { withConsumerWriteFaults, withTemplateReadFaults } from './fault-injection';

/** Every real provider Herald ships, by channel. `sandbox` is built in by the registry. */
export const allProviders: readonly ProviderDefinition[] = [
  ...emailProviders,
  ...smsProviders,
  ...pushProviders,
  ...chatProviders,
  ...webhookProviders,
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
  apiKeys: ApiKeysRepo;
  contacts: ContactsRepo;
  deliveries: DeliveriesRepo;
  operations: OperationsRepo;
  outbox: OutboxRepo;
  preferences: PreferencesRepo;
  stats: StatsRepo;
  suppressions: SuppressionsRepo;
  templates: TemplatesStore;
  events: EventsRepo;
  /** Provider callback replay keys; per request, since it remembers the keys this request spent. */
  callbackReplays: D1ReplayGuard;
  /** Runs statements of several repositories as one atomic D1 batch (nothing for an empty list). */
  commit: (statements: D1PreparedStatement[]) => Promise<void>;
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

export function createServices(env: Env, options: ServiceOptions = {}): Services {
  const now = () => Date.now();
  const cipher = () => cipherFor(env);
  const commitToD1 = async (statements: D1PreparedStatement[]) => {
    if (statements.length > 0) await env.DB.batch(statements);
  };
  return {
    env,
    now,
    registry: providerRegistry,
    apiKeys: new ApiKeysRepo(env.DB),
    contacts: new ContactsRepo(env.DB, cipher),
    deliveries: new DeliveriesRepo(env.DB, cipher),
    operations: new OperationsRepo(env.DB),
    outbox: new OutboxRepo(env.DB),
    preferences: new PreferencesRepo(env.DB),
    stats: new StatsRepo(env.DB),
    suppressions: new SuppressionsRepo(env.DB),
    templates: templatesFor(
      options.consumer ? withTemplateReadFaults(env, env.TEMPLATES) : env.TEMPLATES,
    ).forRequest(),
    events: new EventsRepo(env.DB),
    callbackReplays: new D1ReplayGuard(env.DB, now),
    commit: options.consumer ? withConsumerWriteFaults(env, commitToD1) : commitToD1,
  };
}
