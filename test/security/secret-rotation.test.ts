import { describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import { signToken, verifyToken } from '../../src/lib/signed-token';
import { createServices } from '../../src/services/container';
import {
  suppressedAddresses,
  suppressionKeyOf,
  unsuppressAddress,
} from '../../src/services/recipients/suppressions';
import { ADMIN_KEY, api, json, newContact, testEnv } from '../helpers/api';
import { readDelivery, readOutbox } from '../helpers/deliveries';
import { drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';

/**
 * Rotating SIGNING_SECRET: links, pixels and sessions signed before the rotation keep working while
 * the old secret is listed in SIGNING_SECRET_PREVIOUS, a secret that is neither is refused, and the
 * suppression list (keyed by BLIND_INDEX_KEY) is not touched, including entries written by
 * versions that derived its key from SIGNING_SECRET.
 */

const OLD = 'test-signing-secret'; // the test bindings' SIGNING_SECRET
const NEW = 'rotated-signing-secret-2026';
const rotated = { ...testEnv, SIGNING_SECRET: NEW, SIGNING_SECRET_PREVIOUS: `${OLD}` } as Env;
/** Rotated twice: the first secret is neither current nor previous any more. */
const rotatedTwice = {
  ...testEnv,
  SIGNING_SECRET: 'third-signing-secret',
  SIGNING_SECRET_PREVIOUS: NEW,
} as Env;
/** Rotated without keeping the old secret. */
const rotatedAlone = { ...testEnv, SIGNING_SECRET: NEW } as Env;

const pathOf = (url: string) => {
  const parsed = new URL(url);
  return parsed.pathname + parsed.search;
};
const visit = (url: string, env: Env, method = 'GET') =>
  api(method, url.startsWith('/') ? url : pathOf(url), undefined, { key: null, env });
const unsubscribePost = (url: string, env: Env) =>
  api('POST', pathOf(url), 'List-Unsubscribe=One-Click', {
    key: null,
    env,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });

/** An email sent (under the current secret) with its unsubscribe link, a tracked link and the pixel. */
async function sentEmail() {
  const userId = await newContact({ email: 'rotation@example.com' });
  const captured = envWithCapturedQueues();
  const accepted = await sendNotification(captured, {
    type: 'order_shipped',
    recipients: [userId],
    channels: ['email'],
    data: { order_id: 'R1', tracking_url: 'https://carrier.example/track/R1' },
  });
  await drainQueues(captured);
  const [entry] = await readOutbox({ notificationId: accepted.id });
  const html = entry?.message.html ?? '';
  const unsubscribe = (entry?.message.headers?.['List-Unsubscribe'] ?? '').replace(/^<|>$/g, '');
  const click = /href="(https:\/\/herald\.test\/t\/c\/[^"]+)"/.exec(html)?.[1] ?? '';
  const pixel = /<img src="(https:\/\/herald\.test\/t\/o\/[^"]+)"/.exec(html)?.[1] ?? '';
  expect(unsubscribe).toMatch(/\/u\//);
  expect(click).not.toBe('');
  expect(pixel).not.toBe('');
  return { userId, notificationId: accepted.id, unsubscribe, click, pixel };
}

/** A dashboard session cookie, logged in under `env`. */
async function sessionCookie(env: Env): Promise<string> {
  const res = await api('POST', '/dashboard/login', new URLSearchParams({ key: ADMIN_KEY }).toString(), {
    key: null,
    env,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://herald.test' },
  });
  expect(res.status).toBe(303);
  return (res.headers.get('Set-Cookie') ?? '').split(';')[0] ?? '';
}

const dashboard = (cookie: string, env: Env) =>
  api('GET', '/dashboard', undefined, { key: null, env, headers: { Cookie: cookie } });

describe('SIGNING_SECRET rotation: links and sessions signed before it', () => {
  it('links signed before a rotation still work after it (unsubscribe, click, open, dashboard session)', async () => {
    const sent = await sentEmail();
    const cookie = await sessionCookie(testEnv);

    const click = await visit(sent.click, rotated);
    expect(click.status).toBe(302);
    expect(click.headers.get('Location')).toBe('https://carrier.example/track/R1');
    const pixel = await visit(sent.pixel, rotated);
    expect(pixel.headers.get('Content-Type')).toBe('image/gif');
    expect((await readDelivery(sent.notificationId)).history.map((h) => h.status)).toEqual(
      expect.arrayContaining(['opened', 'clicked']),
    );

    expect((await visit(sent.unsubscribe, rotated)).status).toBe(200);
    expect((await unsubscribePost(sent.unsubscribe, rotated)).status).toBe(200);
    expect(await json(await api('GET', `/v1/contacts/${sent.userId}/preferences`))).toMatchObject({
      types: { order_shipped: { email: false } },
    });

    expect((await dashboard(cookie, rotated)).status).toBe(200);
  });

  it('everything new is signed with the current secret only', async () => {
    const cookie = await sessionCookie(rotated);
    const token = decodeURIComponent(cookie.replace(/^herald_session=/, ''));
    expect(await verifyToken(NEW, 'dashboard', token, Date.now())).toEqual({ sub: 'admin' });
    expect(await verifyToken(OLD, 'dashboard', token, Date.now())).toBeNull();
    // A session started after the rotation survives the next one too, while NEW is listed.
    expect((await dashboard(cookie, rotatedTwice)).status).toBe(200);
  });

  it('a link signed with a secret neither current nor previous is refused', async () => {
    const sent = await sentEmail();
    const cookie = await sessionCookie(testEnv);
    for (const env of [rotatedTwice, rotatedAlone]) {
      expect((await visit(sent.click, env)).status).toBe(404);
      expect((await visit(sent.unsubscribe, env)).status).toBe(404);
      expect((await unsubscribePost(sent.unsubscribe, env)).status).toBe(404);
      const pixel = await visit(sent.pixel, env);
      expect(pixel.headers.get('Content-Type')).toBe('image/gif');
      const page = await dashboard(cookie, env);
      expect(page.status).toBe(302);
      expect(page.headers.get('Location')).toBe('/dashboard/login');
    }
    // Nothing was recorded or changed by any of them.
    const history = (await readDelivery(sent.notificationId)).history.map((h) => h.status);
    expect(history).not.toContain('opened');
    expect(history).not.toContain('clicked');
    expect(history).not.toContain('unsubscribed');
    // And a token an attacker signed with a secret of their own never verifies.
    const forged = await signToken(
      'attacker-secret',
      'dashboard',
      { sub: 'admin' },
      { expiresAtMs: Date.now() + 60_000 },
    );
    expect((await dashboard(`herald_session=${forged}`, rotated)).status).toBe(302);
  });
});

const encoder = new TextEncoder();

/** The hash a version before BLIND_INDEX_KEY stored: HKDF(SIGNING_SECRET, "herald suppression list"). */
async function legacyHash(signingSecret: string, channel: string, value: string): Promise<string> {
  const ikm = await crypto.subtle.importKey('raw', encoder.encode(signingSecret), 'HKDF', false, [
    'deriveKey',
  ]);
  const key = await crypto.subtle.deriveKey(
    {
      name: 'HKDF',
      hash: 'SHA-256',
      salt: new Uint8Array(0),
      info: encoder.encode('herald suppression list'),
    },
    ikm,
    { name: 'HMAC', hash: 'SHA-256', length: 256 },
    false,
    ['sign'],
  );
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(`${channel}:${value}`)));
  return btoa(String.fromCharCode(...mac))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

async function storedReason(channel: string, addressHash: string): Promise<string | null> {
  const row = await testEnv.DB.prepare(
    'SELECT reason FROM suppressions WHERE channel = ? AND address_hash = ?',
  )
    .bind(channel, addressHash)
    .first<{ reason: string }>();
  return row?.reason ?? null;
}

const uniqueEmail = () =>
  `suppressed.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}@example.com`;

/** Sends one email to `email` under `env` and answers the status the send got. */
async function sendStatus(env: Env, email: string): Promise<string | undefined> {
  const captured = envWithCapturedQueues({ ...env });
  const accepted = await sendNotification(captured, {
    type: 'security_alert',
    recipients: [{ email }],
    channels: ['email'],
  });
  return accepted.deliveries[0]?.status;
}

describe('SIGNING_SECRET rotation: the suppression list', () => {
  it('suppressions survive a SIGNING_SECRET rotation (keyed by BLIND_INDEX_KEY alone)', async () => {
    const email = uniqueEmail();
    // A recipient without a user id unsubscribes: their address goes on the list.
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [{ email }],
      channels: ['email'],
      data: { order_id: 'S1' },
    });
    await drainQueues(captured);
    const [entry] = await readOutbox({ notificationId: accepted.id });
    const link = (entry?.message.headers?.['List-Unsubscribe'] ?? '').replace(/^<|>$/g, '');
    expect((await unsubscribePost(link, testEnv)).status).toBe(200);
    for (const env of [rotated, rotatedTwice, rotatedAlone]) {
      const found = await suppressedAddresses(createServices(env), [{ channel: 'email', value: email }]);
      expect(found.size).toBe(1);
      expect(await sendStatus(env, email)).toBe('suppressed');
    }
  });

  it('entries written under the old SIGNING_SECRET-derived key are found after upgrading and rotating, and move to BLIND_INDEX_KEY', async () => {
    const email = uniqueEmail();
    const legacy = await legacyHash(OLD, 'email', email);
    await testEnv.DB.prepare(
      'INSERT INTO suppressions (channel, address_hash, reason, created_at) VALUES (?, ?, ?, ?)',
    )
      .bind('email', legacy, 'bounced', Date.now() - 86_400_000)
      .run();
    const { addressHash: current } = await suppressionKeyOf(createServices(testEnv), {
      channel: 'email',
      value: email,
    });
    expect(current).not.toBe(legacy);
    expect(await storedReason('email', current)).toBeNull();

    // Upgraded (BLIND_INDEX_KEY set) and rotated, the old secret kept as previous: still suppressed.
    expect(await sendStatus(rotated, email)).toBe('suppressed');
    // The entry was copied under BLIND_INDEX_KEY, with its reason, the first time it was found.
    expect(await storedReason('email', current)).toBe('bounced');
    // So once the old secret is dropped, the address stays suppressed.
    expect(await sendStatus(rotatedTwice, email)).toBe('suppressed');
    expect(await sendStatus(rotatedAlone, email)).toBe('suppressed');

    // Lifting the suppression removes it under every key.
    await unsuppressAddress(createServices(testEnv), { channel: 'email', value: email });
    expect(await storedReason('email', current)).toBeNull();
    expect(await storedReason('email', legacy)).toBeNull();
    expect(await sendStatus(testEnv, email)).toBe('queued');
  });

  it('an entry under a secret no longer listed, and never found meanwhile, is not found', async () => {
    const email = uniqueEmail();
    await testEnv.DB.prepare(
      'INSERT INTO suppressions (channel, address_hash, reason, created_at) VALUES (?, ?, ?, ?)',
    )
      .bind('email', await legacyHash('a-secret-long-gone', 'email', email), 'bounced', Date.now())
      .run();
    expect(
      (await suppressedAddresses(createServices(rotated), [{ channel: 'email', value: email }])).size,
    ).toBe(0);
  });
});
