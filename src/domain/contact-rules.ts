/**
 * Address rules shared by the API's schemas and the router. Pure: no I/O.
 */

/** E.164: a plus, a non-zero leading digit, 8 to 15 digits in all (ITU-T E.164 caps at 15). */
export const E164 = /^\+[1-9]\d{7,14}$/;

/** An APNs device token is 32 bytes, sent as 64 hex characters. */
export const APNS_TOKEN = /^[0-9a-fA-F]{64}$/;

/**
 * FCM registration tokens are opaque, URL-safe strings of roughly 100 to 300 characters
 * (usually `<instance id>:<token>`); anything else is almost certainly a copy-paste mistake.
 */
export const FCM_TOKEN = /^[A-Za-z0-9_:\-.]{100,4096}$/;

/** A push subscription as the browser's PushSubscription.toJSON() gives it. */
export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * A push service URL: https, or plain http to a loopback host (a local fake push service). Only
 * the shape is checked here; whether a host may be reached (public, loopback only in development)
 * is the SSRF guard's decision, where the environment is known.
 */
function isPushEndpoint(endpoint: string): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  const host = url.hostname;
  const loopback =
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '[::1]' ||
    /^127(\.\d{1,3}){3}$/.test(host);
  return url.protocol === 'http:' && loopback;
}

/** Parses and checks a web push subscription JSON string; null when unusable. */
export function parseWebPushSubscription(token: string): WebPushSubscription | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(token);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { endpoint, keys } = parsed as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } };
  if (typeof endpoint !== 'string' || !isPushEndpoint(endpoint)) return null;
  const p256dh = keys?.p256dh;
  const auth = keys?.auth;
  if (typeof p256dh !== 'string' || typeof auth !== 'string') return null;
  if (!BASE64URL.test(p256dh) || !BASE64URL.test(auth)) return null;
  // p256dh is an uncompressed P-256 point (65 bytes ≈ 87 base64url chars); auth is 16 bytes (22).
  if (p256dh.replace(/=+$/, '').length !== 87 || auth.replace(/=+$/, '').length !== 22) return null;
  return { endpoint, keys: { p256dh, auth } };
}
