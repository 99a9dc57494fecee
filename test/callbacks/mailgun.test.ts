import { describe, expect, it } from 'vitest';
import {
  mailgunCallbackConfigFromEnv,
  parseMailgunCallback,
  verifyMailgunCallback,
} from '../../src/callbacks/mailgun';
import type { CallbackEvent } from '../../src/callbacks/types';
import { hex, hmacBytes, memoryReplayGuard, refused, request, STALE_OFFSETS_SECONDS } from './helpers';

const NOW = Date.parse('2026-05-01T12:00:00Z');
const NOW_SECONDS = String(NOW / 1000);
const KEY = 'key-0123456789abcdef0123456789abcdef';
const CONFIG = { signingKey: KEY };
const TOKEN = 'a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0';

const EVENT_DATA = {
  event: 'delivered',
  timestamp: 1534108637.153125,
  id: 'hTWCTD81RtiDN-...',
  recipient: 'recipient@example.com',
  message: { headers: { 'message-id': '20180812211713.1.DF5966851B4BAA99@example.org' } },
  'user-variables': { delivery_id: 'dlv_01hzzzzzzzzzzzzzzzzzzzzzzz' },
};

/** Mailgun's scheme, written independently: hex HMAC-SHA256(signing key, timestamp + token). */
async function mailgunBody(
  eventData: unknown,
  options: { key?: string; timestamp?: string; token?: string } = {},
): Promise<string> {
  const timestamp = options.timestamp ?? NOW_SECONDS;
  const token = options.token ?? TOKEN;
  const signature = hex(await hmacBytes('SHA-256', options.key ?? KEY, timestamp + token));
  return JSON.stringify({ signature: { timestamp, token, signature }, 'event-data': eventData });
}

const post = (body: string) => request({ headers: { 'content-type': 'application/json' }, body });

describe('mailgun callback config', () => {
  it('is null without MAILGUN_WEBHOOK_SIGNING_KEY and reads it when set', () => {
    expect(mailgunCallbackConfigFromEnv({})).toBeNull();
    expect(mailgunCallbackConfigFromEnv({ MAILGUN_API_KEY: 'key-api' })).toBeNull();
    expect(mailgunCallbackConfigFromEnv({ MAILGUN_WEBHOOK_SIGNING_KEY: KEY })).toEqual(CONFIG);
  });
});

describe('mailgun signature', () => {
  it('accepts a genuine signature', async () => {
    expect(await verifyMailgunCallback(post(await mailgunBody(EVENT_DATA)), CONFIG, NOW)).toEqual({
      ok: true,
    });
  });

  it('accepts an upper-case hex signature', async () => {
    const body = await mailgunBody(EVENT_DATA);
    const parsed = JSON.parse(body);
    parsed.signature.signature = parsed.signature.signature.toUpperCase();
    expect(await verifyMailgunCallback(post(JSON.stringify(parsed)), CONFIG, NOW)).toEqual({ ok: true });
  });

  it('refuses a signature made with another key (forged)', async () => {
    const forged = await mailgunBody(EVENT_DATA, { key: 'key-attacker' });
    expect(await verifyMailgunCallback(post(forged), CONFIG, NOW)).toEqual(refused('signature mismatch'));
  });

  it('refuses an altered token or timestamp in the signature block', async () => {
    const parsed = JSON.parse(await mailgunBody(EVENT_DATA));
    const alteredToken = { ...parsed, signature: { ...parsed.signature, token: `${TOKEN.slice(0, -1)}1` } };
    expect(await verifyMailgunCallback(post(JSON.stringify(alteredToken)), CONFIG, NOW)).toEqual(
      refused('signature mismatch'),
    );
    const alteredTime = { ...parsed, signature: { ...parsed.signature, timestamp: String(NOW / 1000 - 1) } };
    expect(await verifyMailgunCallback(post(JSON.stringify(alteredTime)), CONFIG, NOW)).toEqual(
      refused('signature mismatch'),
    );
  });

  it.each(STALE_OFFSETS_SECONDS)('refuses a genuinely signed timestamp %s', async (_name, offset) => {
    const body = await mailgunBody(EVENT_DATA, { timestamp: String(NOW / 1000 + offset) });
    expect(await verifyMailgunCallback(post(body), CONFIG, NOW)).toEqual(refused('stale timestamp'));
  });

  it('refuses a replayed token, even attached to different event data', async () => {
    const replay = memoryReplayGuard();
    expect(await verifyMailgunCallback(post(await mailgunBody(EVENT_DATA)), CONFIG, NOW, replay)).toEqual({
      ok: true,
    });
    const sameToken = await mailgunBody({ ...EVENT_DATA, event: 'failed', severity: 'permanent' });
    expect(await verifyMailgunCallback(post(sameToken), CONFIG, NOW + 1_000, replay)).toEqual(
      refused('replayed'),
    );
    expect(replay.keys).toEqual([`mailgun:${TOKEN}`, `mailgun:${TOKEN}`]);
    const fresh = await mailgunBody(EVENT_DATA, { token: 'b'.repeat(50) });
    expect(await verifyMailgunCallback(post(fresh), CONFIG, NOW, replay)).toEqual({ ok: true });
  });

  it('refuses, without throwing, when the replay store fails', async () => {
    const broken = {
      seen: async (): Promise<boolean> => {
        throw new Error('store down');
      },
    };
    expect(await verifyMailgunCallback(post(await mailgunBody(EVENT_DATA)), CONFIG, NOW, broken)).toEqual(
      refused('replay check unavailable'),
    );
  });

  it('does not spend a token on a forged request', async () => {
    const replay = memoryReplayGuard();
    await verifyMailgunCallback(
      post(await mailgunBody(EVENT_DATA, { key: 'key-attacker' })),
      CONFIG,
      NOW,
      replay,
    );
    expect(replay.keys).toEqual([]);
    expect(await verifyMailgunCallback(post(await mailgunBody(EVENT_DATA)), CONFIG, NOW, replay)).toEqual({
      ok: true,
    });
  });

  it('refuses bodies without a usable signature block', async () => {
    const cases: [string, string][] = [
      ['not json', 'missing signature'],
      [JSON.stringify({ 'event-data': EVENT_DATA }), 'missing signature'],
      [JSON.stringify({ signature: { timestamp: NOW_SECONDS, token: TOKEN } }), 'missing signature'],
      [
        JSON.stringify({ signature: { timestamp: 'soon', token: TOKEN, signature: 'ab' } }),
        'malformed timestamp',
      ],
    ];
    for (const [body, reason] of cases) {
      expect(await verifyMailgunCallback(post(body), CONFIG, NOW)).toEqual({ ok: false, reason });
    }
  });
});

describe('mailgun event parsing', () => {
  const base = {
    deliveryId: 'dlv_01hzzzzzzzzzzzzzzzzzzzzzzz',
    providerMessageId: '<20180812211713.1.DF5966851B4BAA99@example.org>',
    occurredAt: '2018-08-12T21:17:17.153Z',
  };
  // Event data as in Mailgun's webhook samples (delivery-status abridged).
  const rows: [string, Record<string, unknown>, CallbackEvent[]][] = [
    ['delivered', {}, [{ status: 'delivered', ...base }]],
    [
      'failed permanent: bounce (550 no such user)',
      {
        event: 'failed',
        severity: 'permanent',
        reason: 'bounce',
        'delivery-status': {
          code: 550,
          message: '5.1.1 The email account that you tried to reach does not exist.',
        },
      },
      [{ status: 'bounced', ...base, reason: 'mailgun failed bounce 550', suppressAddress: true }],
    ],
    [
      'failed permanent: suppress-bounce (605 previously bounced)',
      {
        event: 'failed',
        severity: 'permanent',
        reason: 'suppress-bounce',
        'delivery-status': { code: 605, description: 'Not delivering to previously bounced address' },
      },
      [{ status: 'bounced', ...base, reason: 'mailgun failed suppress-bounce 605', suppressAddress: true }],
    ],
    [
      'failed permanent: suppress-complaint',
      { event: 'failed', severity: 'permanent', reason: 'suppress-complaint' },
      [{ status: 'complained', ...base, reason: 'mailgun failed suppress-complaint', suppressAddress: true }],
    ],
    [
      'failed permanent: suppress-unsubscribe',
      { event: 'failed', severity: 'permanent', reason: 'suppress-unsubscribe' },
      [{ status: 'unsubscribed', ...base, reason: 'mailgun failed suppress-unsubscribe' }],
    ],
    [
      'failed permanent: old (retries exhausted, address not proven dead)',
      { event: 'failed', severity: 'permanent', reason: 'old' },
      [{ status: 'failed', ...base, reason: 'mailgun failed old' }],
    ],
    [
      'failed temporary (Mailgun retries itself)',
      { event: 'failed', severity: 'temporary', reason: 'generic', 'delivery-status': { code: 452 } },
      [],
    ],
    [
      'complained',
      { event: 'complained' },
      [{ status: 'complained', ...base, reason: 'mailgun complained', suppressAddress: true }],
    ],
    ['opened', { event: 'opened' }, [{ status: 'opened', ...base }]],
    ['clicked', { event: 'clicked', url: 'https://example.com' }, [{ status: 'clicked', ...base }]],
    [
      'unsubscribed',
      { event: 'unsubscribed' },
      [{ status: 'unsubscribed', ...base, reason: 'mailgun unsubscribed' }],
    ],
    ['accepted', { event: 'accepted' }, []],
    [
      'rejected',
      { event: 'rejected', reject: { reason: 'Sandbox subdomains are for test purposes only.' } },
      [],
    ],
  ];

  it.each(rows)('%s', async (_name, overrides, expected) => {
    expect(parseMailgunCallback(await mailgunBody({ ...EVENT_DATA, ...overrides }), new Headers())).toEqual(
      expected,
    );
  });

  it('leaves out the delivery id when no user variable was sent, and keeps bracketed ids', async () => {
    const body = await mailgunBody({
      ...EVENT_DATA,
      'user-variables': {},
      message: { headers: { 'message-id': '<already@bracketed>' } },
    });
    expect(parseMailgunCallback(body, new Headers())).toEqual([
      { status: 'delivered', providerMessageId: '<already@bracketed>', occurredAt: base.occurredAt },
    ]);
  });

  it('returns nothing without event-data', () => {
    expect(parseMailgunCallback('{"signature":{}}', new Headers())).toEqual([]);
    expect(parseMailgunCallback('nope', new Headers())).toEqual([]);
  });
});
