import {
  CallbackConfigError,
  type CallbackEvent,
  type CallbackRequest,
  callbackHandlers,
  REPLAY_CHECK_UNAVAILABLE,
} from '../../callbacks';
import type { Channel } from '../../domain/channels';
import type { Delivery } from '../../domain/delivery';
import { AppError } from '../../domain/errors';
import { log } from '../../lib/log';
import type { StatusEvent } from '../../storage/events-repo';
import type { Services } from '../container';
import { followEscalations } from '../operations/escalation';
import { recordStatusChangesById } from '../operations/metrics';
import { addressValue, SuppressionKeyError, suppressStatement } from '../recipients/suppressions';

/**
 * Provider delivery callbacks (`POST /v1/webhooks/{provider}`): verify the raw request with the
 * provider's handler BEFORE reading it, then apply its events to deliveries (status along the
 * state machine, history always) and put proven-dead or unsubscribed addresses on the
 * suppression list, all in one D1 batch.
 *
 * Events are matched by the delivery id the provider echoes (custom_args, `v:`, Metadata,
 * client-ref, tags; Twilio's comes from the signed `?deliveryId=` of the StatusCallback URL).
 * Events carrying only the provider's message id are NOT looked up: that would need an index on
 * `deliveries.provider_message_id`, one more row written per delivery. They are logged and
 * counted as unmatched.
 */

/** The channel each provider's callbacks report on: an event for another channel's delivery is ignored. */
const PROVIDER_CHANNELS: Record<string, Channel> = {
  twilio: 'sms',
  vonage: 'sms',
  sendgrid: 'email',
  resend: 'email',
  mailgun: 'email',
  postmark: 'email',
};

/** Providers whose signature covers the callback URL, so a delivery id in its query can be trusted. */
const URL_SIGNED = new Set(['twilio']);

const DELIVERY_ID = /^dlv_[0-9a-z]{1,60}$/;

/** A provider's timestamp further than this from now is not trusted for the history entry. */
const MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000;

export interface CallbackSummary {
  /** Events the provider reported (status changes Herald understands). */
  received: number;
  /** Events applied to a delivery. */
  applied: number;
  /** Events with no delivery id, or whose delivery does not exist or is of another channel. */
  unmatched: number;
  /** Addresses added to the suppression list. */
  suppressed: number;
}

/**
 * Verifies and applies one provider callback.
 * @throws AppError 404 (unknown or unconfigured provider), 401 (refused), 503 (replay store or
 *   configuration problem: the provider retries later)
 */
export async function receiveCallback(
  services: Services,
  provider: string,
  request: CallbackRequest,
): Promise<CallbackSummary> {
  const handler = Object.hasOwn(callbackHandlers, provider) ? callbackHandlers[provider] : undefined;
  const channel = Object.hasOwn(PROVIDER_CHANNELS, provider) ? PROVIDER_CHANNELS[provider] : undefined;
  if (!handler || !channel) throw new AppError(404, 'not_found', 'unknown callback provider');

  let config: unknown;
  try {
    config = handler.configFromEnv(services.env);
  } catch (error) {
    if (!(error instanceof CallbackConfigError)) throw error;
    log('error', 'callback.config_error', { provider, error: error.message });
    throw new AppError(503, 'unavailable', 'callbacks for this provider are misconfigured');
  }
  if (config === null) throw new AppError(404, 'not_found', 'callbacks for this provider are not configured');

  const replay = services.callbackReplays;
  const verdict = await handler.verify(request, config, services.now(), replay);
  if (!verdict.ok) {
    if (verdict.reason === REPLAY_CHECK_UNAVAILABLE) {
      log('error', 'callback.replay_store_failed', { provider });
      throw new AppError(503, 'unavailable', 'could not check the callback for replays, try again');
    }
    log('warn', 'callback.refused', { provider, reason: verdict.reason });
    throw new AppError(401, 'unauthorized', 'callback verification failed');
  }

  try {
    return await applyCallback(
      services,
      provider,
      channel,
      request,
      handler.parse(request.body, request.headers),
    );
  } catch (error) {
    // Not processed: give the replay key back so the provider's retry of this request is accepted.
    await replay.release().catch(() => undefined);
    if (error instanceof SuppressionKeyError) {
      log('error', 'callback.suppression_key_missing', { provider, error: error.message });
      throw new AppError(503, 'unavailable', 'the suppression list is not configured');
    }
    throw error;
  }
}

async function applyCallback(
  services: Services,
  provider: string,
  channel: Channel,
  request: CallbackRequest,
  events: CallbackEvent[],
): Promise<CallbackSummary> {
  const now = services.now();
  const urlDeliveryId = URL_SIGNED.has(provider) ? deliveryIdFromUrl(request.url) : undefined;
  const withIds = events.map((event) => ({ event, deliveryId: validId(event.deliveryId) ?? urlDeliveryId }));
  const ids = [...new Set(withIds.map((e) => e.deliveryId).filter((id): id is string => id !== undefined))];
  const deliveries = new Map<string, Delivery>(
    ids.length > 0 ? (await services.deliveries.getDeliveries(ids)).map((d) => [d.id, d]) : [],
  );

  const statusEvents: StatusEvent[] = [];
  const suppressions: D1PreparedStatement[] = [];
  const suppressedKeys = new Set<string>();
  let unmatched = 0;
  for (const { event, deliveryId } of withIds) {
    const delivery = deliveryId ? deliveries.get(deliveryId) : undefined;
    if (!delivery || delivery.channel !== channel) {
      unmatched += 1;
      log('info', 'callback.unmatched', {
        provider,
        status: event.status,
        deliveryId: deliveryId ?? null,
        providerMessageId: event.providerMessageId ?? null,
        why: !deliveryId ? 'no delivery id' : !delivery ? 'unknown delivery' : 'other channel',
      });
      continue;
    }
    statusEvents.push({
      deliveryId: delivery.id,
      status: event.status,
      ...(event.reason ? { reason: event.reason } : {}),
      provider,
      at: eventTime(event.occurredAt, now),
    });
    const address = delivery.address ? addressValue(delivery.address) : null;
    const suppress = event.suppressAddress || event.status === 'unsubscribed';
    // The preferences engine will turn `unsubscribed` into an opt-out; until then it suppresses.
    if (suppress && address && !suppressedKeys.has(`${address.channel}:${address.value}`)) {
      suppressedKeys.add(`${address.channel}:${address.value}`);
      suppressions.push(await suppressStatement(services, address, event.status, now));
    }
  }

  if (statusEvents.length + suppressions.length > 0)
    await services.events.apply(statusEvents, now, suppressions);
  await recordStatusChangesById(services, statusEvents);
  await followEscalations(services, statusEvents);
  const summary = {
    received: events.length,
    applied: statusEvents.length,
    unmatched,
    suppressed: suppressions.length,
  };
  log('info', 'callback.received', { provider, ...summary });
  return summary;
}

function validId(id: string | undefined): string | undefined {
  return id !== undefined && DELIVERY_ID.test(id) ? id : undefined;
}

function deliveryIdFromUrl(url: string): string | undefined {
  try {
    return validId(new URL(url).searchParams.get('deliveryId') ?? undefined);
  } catch {
    return undefined;
  }
}

function eventTime(occurredAt: string | undefined, now: number): number {
  const at = occurredAt ? Date.parse(occurredAt) : Number.NaN;
  return Number.isFinite(at) && Math.abs(at - now) <= MAX_CLOCK_SKEW_MS ? at : now;
}
