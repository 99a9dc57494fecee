import type { Env } from '../config/env';
import { ContactsRepo } from '../storage/contacts-repo';
import { DeliveriesRepo } from '../storage/deliveries-repo';
import { OutboxRepo } from '../storage/outbox-repo';
import { PreferencesRepo } from '../storage/preferences-repo';
import { TemplatesStore } from '../storage/templates-store';
import { cipherFor } from './encryption';

/** What every use case needs, built once per request (or queue batch) from the Worker's env. */
export interface Services {
  env: Env;
  contacts: ContactsRepo;
  deliveries: DeliveriesRepo;
  outbox: OutboxRepo;
  preferences: PreferencesRepo;
  templates: TemplatesStore;
  now: () => number;
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

export function createServices(env: Env): Services {
  return {
    env,
    contacts: new ContactsRepo(env.DB, () => cipherFor(env)),
    deliveries: new DeliveriesRepo(env.DB, () => cipherFor(env)),
    outbox: new OutboxRepo(env.DB),
    preferences: new PreferencesRepo(env.DB),
    templates: templatesFor(env.TEMPLATES).forRequest(),
    now: () => Date.now(),
  };
}
