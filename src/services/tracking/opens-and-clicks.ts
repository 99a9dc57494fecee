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
import { signToken, verifyToken } from '../../lib/signed-token';
import type { Services } from '../container';
import { recordStatusChangesById } from '../operations/metrics';

/**
 * Open and click tracking. Every tracked link is `${PUBLIC_BASE_URL}/t/c/{token}` where the token
 * is signed (SIGNING_SECRET, purpose `click`) over the delivery id AND the exact target URL, so
 * the redirect target comes only from a verified token: the endpoint can never be used as an open
 * redirect, and a token for one URL cannot be re-pointed at another. The open pixel is
 * `${PUBLIC_BASE_URL}/t/o/{token}` (purpose `open`, delivery id only). Tokens do not expire: a
 * link in a months-old email still works. Without SIGNING_SECRET or PUBLIC_BASE_URL, tracking is
 * off and messages go out as rendered.
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

/** The delivery and target of a click token, or null for anything not signed by us for a click. */
export async function readClickToken(
  services: Services,
  token: string,
): Promise<{ deliveryId: string; url: string } | null> {
  const secret = services.env.SIGNING_SECRET;
  if (typeof secret !== 'string' || secret === '') return null;
  const payload = await verifyToken(secret, CLICK_PURPOSE, token, services.now());
  const deliveryId = payload?.d;
  const url = payload?.u;
  if (typeof deliveryId !== 'string' || !DELIVERY_ID.test(deliveryId)) return null;
  if (typeof url !== 'string' || !isSafeTarget(url)) return null;
  return { deliveryId, url };
}

/** The delivery of an open token, or null. */
export async function readOpenToken(services: Services, token: string): Promise<string | null> {
  const secret = services.env.SIGNING_SECRET;
  if (typeof secret !== 'string' || secret === '') return null;
  const payload = await verifyToken(secret, OPEN_PURPOSE, token, services.now());
  const deliveryId = payload?.d;
  return typeof deliveryId === 'string' && DELIVERY_ID.test(deliveryId) ? deliveryId : null;
}

/**
 * Records an open or a click (one row written: status along the state machine, history always).
 * Never throws: a tracking hit must still answer its pixel or redirect.
 */
export async function recordEngagement(
  services: Services,
  deliveryId: string,
  status: 'opened' | 'clicked',
): Promise<void> {
  const now = services.now();
  try {
    await services.events.apply([{ deliveryId, status, at: now }], now);
    await recordStatusChangesById(services, [{ deliveryId, status }]);
  } catch (error) {
    log('error', 'tracking.record_failed', {
      deliveryId,
      status,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}
