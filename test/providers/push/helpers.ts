// Push test fixtures: deliveries to a push address, and keys generated per run (the tests of
// other folders take `rsaPrivateKeyPem` from here too). The fake network is the shared harness.
import type { AddressOf } from '../../../src/domain/address';
import type { Priority, PushPlatform } from '../../../src/domain/channels';
import type { RenderedMessage } from '../../../src/domain/message';
import { toBase64 } from '../../../src/lib/encoding';
import type { SendRequest } from '../../../src/providers/types';
import { deliveryOf } from '../harness';

/** A delivery to one push address with sensible defaults (a UUID delivery id, as APNs likes). */
export function pushRequest(
  platform: PushPlatform,
  deviceToken: string,
  overrides: { message?: RenderedMessage; priority?: Priority; deliveryId?: string } = {},
): SendRequest<AddressOf<'push'>> {
  return deliveryOf(
    { channel: 'push', platform, deviceToken },
    overrides.message ?? { title: 'Shipped', body: 'Your order is on its way' },
    {
      deliveryId: overrides.deliveryId ?? '0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b',
      ...(overrides.priority ? { priority: overrides.priority } : {}),
    },
  );
}

/** PKCS#8 PEM of a private key, 64 characters a line, as Apple and Google ship them. */
export async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = (await crypto.subtle.exportKey('pkcs8', key)) as ArrayBuffer;
  const base64 = toBase64(new Uint8Array(der));
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
