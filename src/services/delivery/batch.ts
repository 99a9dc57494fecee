import type { Channel } from '../../domain/channels';
import type { Contact } from '../../domain/contact';
import type { DeliveryToSend } from '../../domain/delivery';
import type { CountIncrement } from '../../domain/metric-counters';
import type { Preferences } from '../../domain/preferences';
import type { TypeConfig } from '../../domain/type-config';
import type { Provider, ProviderDeps, SendRequest } from '../../providers/types';
import type { CarriedOutcome } from '../../queue/messages';
import type { Outcome } from '../../storage/deliveries-repo';
import type { Services } from '../container';

/** What the queue consumer does with one delivery id after this batch. */
export type Decision =
  | { kind: 'done' }
  /**
   * Try again after a failed attempt (counts against the queue's retries); `pin` names the only
   * provider it may go to (its last answer was unknown).
   */
  | { kind: 'retry'; delaySeconds: number; pin?: string }
  /** Not yet: scheduled for later, or deferred by the recipient's rules; re-sent as a new message. */
  | { kind: 'wait'; delaySeconds: number; pin?: string }
  | { kind: 'dead'; reason: string }
  /** A provider answered but D1 refused the outcome: it travels with the id until it is recorded. */
  | { kind: 'carry'; delaySeconds: number; outcome: CarriedOutcome };

/** What a permanent answer proves about the contact. */
export type Cleanup =
  | { userId: string; kind: 'remove-token'; target: string }
  | { userId: string; kind: 'disable-channel'; target: string }
  | { userId: string; kind: 'sms-opt-out' };

/** A delivery's outcome for this batch, still to be recorded, and what happens to its id next. */
export interface Pending {
  outcome: Outcome;
  decision: Decision;
  cleanup?: Cleanup;
  /** The provider's error code (e.g. `BadDeviceToken`), for the APNs mass-prune check. */
  code?: string;
  platform?: string;
  /** Already recorded on its own, right after the provider's answer: not part of the batch's commit. */
  recorded?: boolean;
  /**
   * What that commit of its own found to count (the status it moved, the providers' errors): added
   * by the batch's commit, so the answer's commit writes its row alone.
   */
  counts?: CountIncrement[];
  /** The outcome travelled with the message: D1 refused it before. */
  carried?: boolean;
}

/**
 * One queue batch of one channel on its way through the delivery pipeline. Each step reads what
 * the earlier ones left and narrows `todo`; every delivery ends with a decision, and those that
 * reached an outcome also with a `pending` entry to record.
 */
export interface DeliveryBatch {
  services: Services;
  channel: Channel;
  now: number;
  ids: readonly string[];
  /** When ingest handed each id to the queue (from the message); absent ids are not waited for. */
  handedAt: ReadonlyMap<string, number>;
  /** The provider each of some ids must be retried on (their last answer was unknown). */
  pins: ReadonlyMap<string, string>;
  /** Digest carriers: the ids folded into each (from the message, or released by this batch). */
  digests: Map<string, string[]>;
  /** Outcomes that travelled with their ids because D1 could not take them. */
  carried: ReadonlyMap<string, CarriedOutcome>;
  /** Ids whose bucket is moving to another database: they wait until it has. */
  moving: ReadonlySet<string>;
  deps?: ProviderDeps;
  loaded: Map<string, DeliveryToSend>;
  contacts: Map<string, Contact>;
  preferences: Map<string, Preferences>;
  configs: Map<string, TypeConfig>;
  chain: Provider[];
  /** What the sandbox provider captured, for the outbox. */
  captured: SendRequest[];
  /** The deliveries still going forward after the last step. */
  todo: DeliveryToSend[];
  pending: Map<string, Pending>;
  decisions: Map<string, Decision>;
}

/** The contact of a delivery's user, when it has one. */
export function contactOf(batch: DeliveryBatch, delivery: DeliveryToSend): Contact | undefined {
  return delivery.userId ? batch.contacts.get(delivery.userId) : undefined;
}

/** The type configuration of a delivery (loaded once per type per batch). */
export function configOf(batch: DeliveryBatch, delivery: DeliveryToSend): TypeConfig {
  return batch.configs.get(delivery.type) ?? {};
}
