import type { Channel } from '../../domain/channels';
import type { RenderedMessage } from '../../domain/message';
import {
  appendOpenPixel,
  htmlLinkTargets,
  type LinkOptions,
  rewriteHtmlLinks,
  rewriteTextLinks,
  textLinkTargets,
} from '../../domain/tracking-links';
import type { TypeConfig } from '../../domain/type-config';
import { log } from '../../lib/log';
import { signToken, verificationSecrets, verifyToken } from '../../lib/signed-token';
import type { Services } from '../container';
import { followEscalations } from '../operations/escalation';
import { recordStatusChangesById } from '../operations/metrics';

/**
 * Open and click tracking. Every tracked link is `${PUBLIC_BASE_URL}/t/c/{token}` where the token
 * is signed (SIGNING_SECRET, purpose `click`) over the delivery id AND the exact target URL, so
 * the redirect target comes only from a verified token: the endpoint can never be used as an open
 * redirect, and a token for one URL cannot be re-pointed at another. Tokens are signed with the
 * current secret and verified with it or a previous one (SIGNING_SECRET_PREVIOUS). The open pixel is
 * `${PUBLIC_BASE_URL}/t/o/{token}` (purpose `open`, delivery id only). Tokens do not expire: a
 * link in a months-old email still works. The endpoints are public, so what a hit may cost is
 * bounded: only the first open and the first click of a delivery write (one row each), and a token
 * hit more than TRACKING_HITS_PER_MINUTE times a minute is answered without reading D1. Without
 * SIGNING_SECRET or PUBLIC_BASE_URL, tracking is off and messages go out as rendered.
 */

export const OPEN_PURPOSE = 'open';
export const CLICK_PURPOSE = 'click';

/** Tokens carry ids only; Herald's delivery ids look like this. */
const DELIVERY_ID = /^dlv_[0-9a-z]{1,60}$/;
/**
 * A redirect target is an absolute http(s) URL of printable characters (non-ASCII allowed: the
 * redirect percent-encodes it), with no whitespace or control characters to smuggle into a header.
 */
const PRINTABLE_URL = /^https?:\/\/[!-~\u00a1-\uffff]+$/i;
const isSafeTarget = (url: string) => PRINTABLE_URL.test(url) && !/\s/.test(url);

interface TrackingSettings {
  secret: string;
  baseUrl: string;
}

let warnedOff = false;

function settings(services: Services, baseUrl?: string): TrackingSettings | null {
  const secret = services.env.SIGNING_SECRET;
  const base = (baseUrl ?? services.env.PUBLIC_BASE_URL ?? '').trim().replace(/\/+$/, '');
  if (typeof secret === 'string' && secret !== '' && /^https?:\/\//i.test(base))
    return { secret, baseUrl: base };
  if (!warnedOff) {
    warnedOff = true;
    log('warn', 'tracking.off', {
      message: 'SIGNING_SECRET or PUBLIC_BASE_URL is unset: links are not tracked',
    });
  }
  return null;
}

/**
 * Links to Herald itself (unsubscribe, preferences, already tracked links) are never wrapped, nor
 * are links the redirect would refuse (so a wrapped link always works).
 */
function linkOptions(base: string, skip?: (url: string) => boolean): LinkOptions {
  const own = base.toLowerCase();
  return {
    skip: (url) => {
      const lower = url.toLowerCase();
      return lower === own || lower.startsWith(`${own}/`) || !isSafeTarget(url) || (skip?.(url) ?? false);
    },
  };
}

/** Signs one click URL per distinct target. */
async function clickUrls(
  config: TrackingSettings,
  deliveryId: string,
  targets: readonly string[],
): Promise<Map<string, string>> {
  const unique = [...new Set(targets)];
  const tokens = await Promise.all(
    unique.map((url) => signToken(config.secret, CLICK_PURPOSE, { d: deliveryId, u: url })),
  );
  return new Map(unique.map((url, i) => [url, `${config.baseUrl}/t/c/${tokens[i]}`]));
}

/** The tracked link for one target URL (for a push tap URL, say), or null when tracking is off. */
export async function trackedUrl(services: Services, deliveryId: string, url: string, baseUrl?: string) {
  const config = settings(services, baseUrl);
  if (!config || linkOptions(config.baseUrl).skip?.(url)) return null;
  return (await clickUrls(config, deliveryId, [url])).get(url) ?? null;
}

/**
 * An email's HTML with every http(s) link wrapped for click tracking and the open pixel added.
 * Links to `baseUrl` itself (the unsubscribe link) and those `skip` refuses are left alone.
 */
export async function trackEmail(
  services: Services,
  email: { deliveryId: string; html: string; skip?: (url: string) => boolean },
  baseUrl?: string,
): Promise<string> {
  const config = settings(services, baseUrl);
  if (!config) return email.html;
  const options = linkOptions(config.baseUrl, email.skip);
  const urls = await clickUrls(config, email.deliveryId, htmlLinkTargets(email.html, options));
  const linked = rewriteHtmlLinks(email.html, (url) => urls.get(url) ?? url, options);
  const openToken = await signToken(config.secret, OPEN_PURPOSE, { d: email.deliveryId });
  return appendOpenPixel(linked, `${config.baseUrl}/t/o/${openToken}`);
}

/** Plain text (SMS, push, chat) with every http(s) URL wrapped for click tracking. */
export async function trackText(
  services: Services,
  message: { deliveryId: string; text: string; skip?: (url: string) => boolean },
  baseUrl?: string,
): Promise<string> {
  const config = settings(services, baseUrl);
  if (!config) return message.text;
  const options = linkOptions(config.baseUrl, message.skip);
  const urls = await clickUrls(config, message.deliveryId, textLinkTargets(message.text, options));
  if (urls.size === 0) return message.text;
  return rewriteTextLinks(message.text, (url) => urls.get(url) ?? url, options);
}

/** Email links are always tracked; push, SMS and chat only when the type sets `trackClicks`. */
export function shouldTrackClicks(channel: Channel, typeConfig: TypeConfig | undefined): boolean {
  if (channel === 'email') return true;
  if (channel === 'webhook') return false;
  if (channel === 'inapp') return false; // the inbox reports its own reads and clicks
  return typeConfig?.trackClicks === true;
}

/**
 * A rendered message with tracking applied for its channel: email HTML gets tracked links and
 * the pixel (the plain-text part is left readable); SMS/chat text, push body and push/chat tap
 * URL get tracked links when `shouldTrackClicks`. Webhooks are never touched.
 */
export async function trackMessage(
  services: Services,
  delivery: { id: string; channel: Channel },
  message: RenderedMessage,
  typeConfig?: TypeConfig,
): Promise<RenderedMessage> {
  if (!shouldTrackClicks(delivery.channel, typeConfig)) return message;
  const out: RenderedMessage = { ...message };
  if (delivery.channel === 'email') {
    if (message.html !== undefined)
      out.html = await trackEmail(services, { deliveryId: delivery.id, html: message.html });
    return out;
  }
  if (message.text !== undefined)
    out.text = await trackText(services, { deliveryId: delivery.id, text: message.text });
  if (message.body !== undefined)
    out.body = await trackText(services, { deliveryId: delivery.id, text: message.body });
  if (message.url !== undefined)
    out.url = (await trackedUrl(services, delivery.id, message.url)) ?? message.url;
  return out;
}

/**
 * The secrets a tracking token verifies with: SIGNING_SECRET, then each SIGNING_SECRET_PREVIOUS,
 * so links in messages sent before a rotation keep working. Empty (nothing verifies) without one.
 */
const verifyingSecrets = (services: Services) =>
  verificationSecrets(services.env.SIGNING_SECRET, services.env.SIGNING_SECRET_PREVIOUS);

/** The delivery and target of a click token, or null for anything not signed by us for a click. */
export async function readClickToken(
  services: Services,
  token: string,
): Promise<{ deliveryId: string; url: string } | null> {
  const payload = await verifyToken(verifyingSecrets(services), CLICK_PURPOSE, token, services.now());
  const deliveryId = payload?.d;
  const url = payload?.u;
  if (typeof deliveryId !== 'string' || !DELIVERY_ID.test(deliveryId)) return null;
  if (typeof url !== 'string' || !isSafeTarget(url)) return null;
  return { deliveryId, url };
}

/** The delivery of an open token, or null. */
export async function readOpenToken(services: Services, token: string): Promise<string | null> {
  const payload = await verifyToken(verifyingSecrets(services), OPEN_PURPOSE, token, services.now());
  const deliveryId = payload?.d;
  return typeof deliveryId === 'string' && DELIVERY_ID.test(deliveryId) ? deliveryId : null;
}

/** Hits one tracking token may make in a minute (a burst of as many) before nothing is read for it. */
export const TRACKING_HITS_PER_MINUTE = 5;

/** Tokens the limiter remembers per isolate; the least recently seen is forgotten first. */
const LIMITER_TOKENS = 10_000;

/**
 * A per-isolate token bucket per tracking token: each token may record TRACKING_HITS_PER_MINUTE
 * hits a minute, refilled continuously. Past that the pixel and the redirect are still answered,
 * but D1 is not even read. Per isolate, not global: a flood spread over many isolates gets that
 * many reads in each, and only the first open and first click of a delivery ever write.
 */
class TrackingLimiter {
  private readonly buckets = new Map<string, { level: number; atMs: number }>();

  admit(token: string, nowMs: number): boolean {
    const capacity = TRACKING_HITS_PER_MINUTE;
    const bucket = this.buckets.get(token);
    const refilled = bucket ? (Math.max(0, nowMs - bucket.atMs) * capacity) / 60_000 : capacity;
    const level = Math.min(capacity, (bucket?.level ?? 0) + refilled);
    // Re-inserted so the map's order is least recently seen first.
    this.buckets.delete(token);
    if (this.buckets.size >= LIMITER_TOKENS) this.buckets.delete(this.buckets.keys().next().value ?? '');
    const admitted = level >= 1;
    this.buckets.set(token, { level: admitted ? level - 1 : level, atMs: nowMs });
    return admitted;
  }
}

const limiter = new TrackingLimiter();

/**
 * Records the first open or the first click of a delivery (one row written: status along the
 * state machine, history), and nothing for a repeat: the UPDATE applies only when the history
 * holds no such event yet. A token past its per-minute limit is not even read. Never throws: a
 * tracking hit must still answer its pixel or redirect.
 */
export async function recordEngagement(
  services: Services,
  hit: { token: string; deliveryId: string },
  status: 'opened' | 'clicked',
): Promise<void> {
  const { deliveryId } = hit;
  const now = services.now();
  if (!limiter.admit(hit.token, now)) return;
  try {
    const first = await services.events.applyFirst({ deliveryId, status, at: now }, now);
    if (first.applied) {
      await recordStatusChangesById(services, [{ deliveryId, status }]);
      if (first.step) await followEscalations(services, [{ deliveryId, status }], [first.step]);
    }
  } catch (error) {
    log('error', 'tracking.record_failed', {
      deliveryId,
      status,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}
