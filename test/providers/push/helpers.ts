// Test helpers for the push providers: requests, a recording fetch, keys generated per run.
import type { AddressOf } from '../../../src/domain/address';
import type { Priority, PushPlatform } from '../../../src/domain/channels';
import type { RenderedMessage } from '../../../src/domain/message';
import type { ProviderDeps, SendRequest } from '../../../src/providers/types';

/** A delivery to one push address with sensible defaults. */
export function pushRequest(
  platform: PushPlatform,
  deviceToken: string,
  overrides: { message?: RenderedMessage; priority?: Priority; deliveryId?: string } = {},
): SendRequest<AddressOf<'push'>> {
  return {
    deliveryId: overrides.deliveryId ?? '0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b',
    notificationId: 'ntf_1',
    type: 'order.shipped',
    priority: overrides.priority ?? 'normal',
    address: { channel: 'push', platform, deviceToken },
    message: overrides.message ?? { title: 'Shipped', body: 'Your order is on its way' },
  };
}

/** A fetch that records every request (as a Request) and answers with `respond`. */
export function recordingFetch(respond: (request: Request, index: number) => Response | Promise<Response>) {
  const requests: Request[] = [];
  const fetch: ProviderDeps['fetch'] = async (input, init) => {
    const request = new Request(input, init);
    requests.push(request.clone());
    return respond(request, requests.length - 1);
  };
  return { fetch, requests };
}

/** A clock tests move by hand. */
export function manualClock(startMs = Date.UTC(2026, 0, 15, 12, 0, 0)) {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance(ms: number) {
      nowMs += ms;
    },
  };
}

export function b64url(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = '';
  for (const byte of view) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromB64url(text: string): Uint8Array {
  const standard = text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, '='));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** PKCS#8 PEM of a private key, 64 characters a line, as Apple and Google ship them. */
export async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = (await crypto.subtle.exportKey('pkcs8', key)) as ArrayBuffer;
  const base64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  return `-----BEGIN PRIVATE KEY-----\n${base64.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** A fresh P-256 signing pair (APNs .p8 keys and VAPID keys are this kind). */
export async function generateP256(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
}

/** A fresh RSA-2048 pair like a Google service-account key. */
export async function generateRsa(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(
    {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
}

/** A fresh RSA private key in PKCS#8 PEM, as a Google service account holds one. */
export async function rsaPrivateKeyPem(): Promise<string> {
  return pkcs8Pem((await generateRsa()).privateKey);
}

export const jsonResponse = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
