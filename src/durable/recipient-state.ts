import { type Channel, isChannel } from '../domain/channels';
import type { DedupeClaim, SendRecord } from '../domain/recipient-rules';

/**
 * One recipient's state under its rules (caps, dedupe claims, leases), as the Recipient Durable Object holds it in memory and stores
 * it in its single SQLite row: counted sends, dedupe claims and leases. Pure: no storage here.
 */

/** A counted send: one notification on one channel, and the deliveries that went under it. */
export interface HeldSend extends SendRecord {
  /** Until when some cap can still count it; past that it is pruned. */
  readonly retainedUntilMs: number;
  /**
   * The notification's deliveries let through on the channel, first first. A delivery reported
   * not sent leaves; the last one to leave gives the slot back.
   */
  readonly deliveryIds: readonly string[];
}

/** A dedupe claim on (channel, type, key). */
export interface HeldClaim extends DedupeClaim {
  readonly channel: Channel;
  readonly type: string;
  readonly dedupeKey: string;
}

export interface RecipientState {
  /** By {@link sendKey}. */
  readonly sends: Map<string, HeldSend>;
  /** By {@link claimKey}. */
  readonly claims: Map<string, HeldClaim>;
  /** deliveryId -> end of its lease (ms). */
  readonly leases: Map<string, number>;
}

export const sendKey = (notificationId: string, channel: Channel): string =>
  JSON.stringify([notificationId, channel]);

export const claimKey = (channel: Channel, type: string, dedupeKey: string): string =>
  JSON.stringify([channel, type, dedupeKey]);

export function emptyState(): RecipientState {
  return { sends: new Map(), claims: new Map(), leases: new Map() };
}

export function isEmptyState(state: RecipientState): boolean {
  return state.sends.size === 0 && state.claims.size === 0 && state.leases.size === 0;
}

/** Drops every send, claim and lease that has expired at `nowMs`. */
export function pruneState(state: RecipientState, nowMs: number): void {
  for (const [key, send] of state.sends) if (send.retainedUntilMs <= nowMs) state.sends.delete(key);
  for (const [key, claim] of state.claims) if (claim.expiresAtMs <= nowMs) state.claims.delete(key);
  for (const [deliveryId, untilMs] of state.leases) if (untilMs <= nowMs) state.leases.delete(deliveryId);
}

/** `list` with `id` appended, unless it is there already. */
export const withDelivery = (list: readonly string[], id: string): readonly string[] =>
  list.includes(id) ? list : [...list, id];

/**
 * Takes a delivery that was not sent out of the sends and claims it went under; a send or claim
 * it leaves empty is dropped (the slot and the key are free again). Whether anything changed.
 */
export function releaseDelivery(state: RecipientState, deliveryId: string): boolean {
  let changed = false;
  for (const entries of [state.sends, state.claims] as Map<string, HeldSend | HeldClaim>[]) {
    for (const [key, entry] of entries) {
      if (!entry.deliveryIds.includes(deliveryId)) continue;
      changed = true;
      const rest = entry.deliveryIds.filter((id) => id !== deliveryId);
      if (rest.length === 0) entries.delete(key);
      else entries.set(key, { ...entry, deliveryIds: rest });
    }
  }
  return changed;
}

/*
 * The stored form: compact JSON of tuples, version 1.
 *   { "v": 1,
 *     "s": [[notificationId, channel, type, sentAtMs, retainedUntilMs, [deliveryId…]]…],
 *     "c": [[channel, type, dedupeKey, notificationId, expiresAtMs, [deliveryId…]]…],
 *     "l": [[deliveryId, leaseUntilMs]…] }
 */
type SendTuple = [string, Channel, string, number, number, readonly string[]];
type ClaimTuple = [Channel, string, string, string, number, readonly string[]];

export function serializeState(state: RecipientState): string {
  const s: SendTuple[] = [...state.sends.values()].map((x) => [
    x.notificationId,
    x.channel,
    x.type,
    x.sentAtMs,
    x.retainedUntilMs,
    x.deliveryIds,
  ]);
  const c: ClaimTuple[] = [...state.claims.values()].map((x) => [
    x.channel,
    x.type,
    x.dedupeKey,
    x.notificationId,
    x.expiresAtMs,
    x.deliveryIds,
  ]);
  return JSON.stringify({ v: 1, s, c, l: [...state.leases] });
}

const isText = (value: unknown): value is string => typeof value === 'string';
const isInstant = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const isIdList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.length > 0 && value.every(isText);
const tuples = (value: unknown): unknown[][] =>
  Array.isArray(value) ? value.filter((item): item is unknown[] => Array.isArray(item)) : [];

/**
 * Reads the stored form back. Entries that do not have the expected shape are skipped, one by
 * one; a row that is not JSON of version 1 throws.
 */
export function parseState(text: string): RecipientState {
  const stored = JSON.parse(text) as { v?: unknown; s?: unknown; c?: unknown; l?: unknown } | null;
  if (stored?.v !== 1) throw new Error('unknown recipient state version');
  const state = emptyState();
  for (const [notificationId, channel, type, sentAtMs, retainedUntilMs, deliveryIds] of tuples(stored.s)) {
    if (!isText(notificationId) || !isText(channel) || !isChannel(channel) || !isText(type)) continue;
    if (!isInstant(sentAtMs) || !isInstant(retainedUntilMs) || !isIdList(deliveryIds)) continue;
    state.sends.set(sendKey(notificationId, channel), {
      notificationId,
      channel,
      type,
      sentAtMs,
      retainedUntilMs,
      deliveryIds,
    });
  }
  for (const [channel, type, dedupeKey, notificationId, expiresAtMs, deliveryIds] of tuples(stored.c)) {
    if (!isText(channel) || !isChannel(channel) || !isText(type) || !isText(dedupeKey)) continue;
    if (!isText(notificationId) || !isInstant(expiresAtMs) || !isIdList(deliveryIds)) continue;
    state.claims.set(claimKey(channel, type, dedupeKey), {
      channel,
      type,
      dedupeKey,
      notificationId,
      expiresAtMs,
      deliveryIds,
    });
  }
  for (const [deliveryId, untilMs] of tuples(stored.l)) {
    if (isText(deliveryId) && isInstant(untilMs)) state.leases.set(deliveryId, untilMs);
  }
  return state;
}
