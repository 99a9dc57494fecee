import { describe, expect, it } from 'vitest';
import {
  parseTwilioCallback,
  twilioCallbackConfigFromEnv,
  verifyTwilioCallback,
} from '../../src/callbacks/twilio';
import type { CallbackEvent } from '../../src/callbacks/types';
import { base64, hmacBytes, refused, request } from './helpers';

const NOW = Date.parse('2026-05-01T12:00:00Z');
const TOKEN = 'test-auth-token-0123456789abcdef';
const CONFIG = { authToken: TOKEN };
const URL_ = 'https://herald.test/v1/webhooks/twilio';

/** Twilio's scheme, written independently: base64 HMAC-SHA1(token, url + sorted name+value pairs). */
async function twilioSign(token: string, url: string, params: Record<string, string>): Promise<string> {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, name) => acc + name + params[name], url);
  return base64(await hmacBytes('SHA-1', token, data));
}

/** A status callback as Twilio posts it (fields as in Twilio's "track outbound message status" guide). */
const STATUS_PARAMS = {
  AccountSid: 'ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  ApiVersion: '2010-04-01',
  From: '+15017122661',
  MessageSid: 'SM1234567890abcdef1234567890abcdef',
  MessageStatus: 'delivered',
  SmsSid: 'SM1234567890abcdef1234567890abcdef',
  SmsStatus: 'delivered',
  To: '+15558675310',
};

async function signedRequest(
  params: Record<string, string>,
  options: { url?: string; signUrl?: string } = {},
) {
  const url = options.url ?? URL_;
  return request({
    url,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': await twilioSign(TOKEN, options.signUrl ?? url, params),
    },
    body: new URLSearchParams(params).toString(),
  });
}

describe('twilio callback config', () => {
  it('is null without TWILIO_AUTH_TOKEN and reads it when set', () => {
    expect(twilioCallbackConfigFromEnv({})).toBeNull();
    expect(twilioCallbackConfigFromEnv({ TWILIO_AUTH_TOKEN: '  ' })).toBeNull();
    expect(twilioCallbackConfigFromEnv({ TWILIO_AUTH_TOKEN: TOKEN })).toEqual({ authToken: TOKEN });
  });
});

describe('twilio signature: published vectors', () => {
  const vectorParams = {
    CallSid: 'CA1234567890ABCDE',
    Caller: '+14158675309',
    Digits: '1234',
    From: '+14158675309',
    To: '+18005551212',
  };
  const vectorUrl = 'https://mycompany.com/myapp.php?foo=1&bar=2';

  it.each([
    // twilio-node spec/validation.spec.js (auth token 12345)
    ['twilio-node test vector', vectorParams, 'RSOYDt4T1cUTdK1PDd93/VVr8B8='],
    // The same example with the caller numbers of Twilio's earlier security docs, as reproduced in
    // https://gist.github.com/ryanwinchester/ab49855e9acb7352507b8fa92ffe69d0
    [
      'earlier docs example',
      { ...vectorParams, Caller: '+12349013030', From: '+12349013030' },
      '0/KCTR6DLpKmkAf8muzZqo1nDgQ=',
    ],
  ])('accepts the %s', async (_name, params, signature) => {
    const verdict = await verifyTwilioCallback(
      request({
        url: vectorUrl,
        headers: { 'x-twilio-signature': signature },
        body: new URLSearchParams(params).toString(),
      }),
      { authToken: '12345' },
      NOW,
    );
    expect(verdict).toEqual({ ok: true });
  });

  it('refuses the vector under another token', async () => {
    const verdict = await verifyTwilioCallback(
      request({
        url: vectorUrl,
        headers: { 'x-twilio-signature': 'RSOYDt4T1cUTdK1PDd93/VVr8B8=' },
        body: new URLSearchParams(vectorParams).toString(),
      }),
      { authToken: '54321' },
      NOW,
    );
    expect(verdict).toEqual(refused('signature mismatch'));
  });
});

describe('twilio signature: independently signed status callbacks', () => {
  it('accepts a genuine status callback', async () => {
    expect(await verifyTwilioCallback(await signedRequest(STATUS_PARAMS), CONFIG, NOW)).toEqual({ ok: true });
  });

  it('accepts params whose values need form encoding (+, spaces, unicode, &)', async () => {
    const params = { ...STATUS_PARAMS, ErrorMessage: 'a & b = c ✓', To: '+44 7700 900123' };
    expect(await verifyTwilioCallback(await signedRequest(params), CONFIG, NOW)).toEqual({ ok: true });
  });

  it('refuses a signature made with another auth token (forged)', async () => {
    const forged = await signedRequest(STATUS_PARAMS);
    forged.headers.set('x-twilio-signature', await twilioSign('attacker-token', URL_, STATUS_PARAMS));
    expect(await verifyTwilioCallback(forged, CONFIG, NOW)).toEqual(refused('signature mismatch'));
  });

  it('refuses an altered body', async () => {
    const genuine = await signedRequest(STATUS_PARAMS);
    const altered = {
      ...genuine,
      body: genuine.body.replace('MessageStatus=delivered', 'MessageStatus=failed'),
    };
    expect(altered.body).not.toBe(genuine.body);
    expect(await verifyTwilioCallback(altered, CONFIG, NOW)).toEqual(refused('signature mismatch'));
  });

  it('refuses an added parameter', async () => {
    const genuine = await signedRequest(STATUS_PARAMS);
    const altered = { ...genuine, body: `${genuine.body}&ErrorCode=30006` };
    expect((await verifyTwilioCallback(altered, CONFIG, NOW)).ok).toBe(false);
  });

  it('refuses a request sent to another URL than the one signed', async () => {
    const moved = await signedRequest(STATUS_PARAMS, {
      url: 'https://herald.test/v1/webhooks/twilio?x=1',
      signUrl: URL_,
    });
    expect((await verifyTwilioCallback(moved, CONFIG, NOW)).ok).toBe(false);
  });

  it('refuses a missing signature header', async () => {
    const genuine = await signedRequest(STATUS_PARAMS);
    genuine.headers.delete('x-twilio-signature');
    expect(await verifyTwilioCallback(genuine, CONFIG, NOW)).toEqual(refused('missing signature'));
  });

  it.each([
    ['signed with :443, received without a port', 'https://herald.test:443/v1/webhooks/twilio', URL_],
    ['signed without a port, received with :443', URL_, 'https://herald.test:443/v1/webhooks/twilio'],
  ])('accepts the default-port quirk: %s', async (_name, signUrl, url) => {
    const quirky = await signedRequest(STATUS_PARAMS, { url, signUrl });
    expect(await verifyTwilioCallback(quirky, CONFIG, NOW)).toEqual({ ok: true });
  });

  it('does not treat a different, non-default port as the same URL', async () => {
    const other = await signedRequest(STATUS_PARAMS, {
      url: URL_,
      signUrl: 'https://herald.test:8443/v1/webhooks/twilio',
    });
    expect((await verifyTwilioCallback(other, CONFIG, NOW)).ok).toBe(false);
  });

  it('verifies a GET callback against the URL alone', async () => {
    const url = `${URL_}?${new URLSearchParams(STATUS_PARAMS)}`;
    const signature = base64(await hmacBytes('SHA-1', TOKEN, url));
    const get = request({ url, method: 'GET', headers: { 'x-twilio-signature': signature } });
    expect(await verifyTwilioCallback(get, CONFIG, NOW)).toEqual({ ok: true });
  });

  it('verifies a JSON body through the signed bodySHA256 parameter', async () => {
    const body = '{"MessageSid":"SM1","MessageStatus":"delivered"}';
    const bodyHash = Array.from(
      new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(body))),
      (b) => b.toString(16).padStart(2, '0'),
    ).join('');
    const url = `${URL_}?bodySHA256=${bodyHash}`;
    const signature = base64(await hmacBytes('SHA-1', TOKEN, url));
    const headers = { 'x-twilio-signature': signature, 'content-type': 'application/json' };
    expect(await verifyTwilioCallback(request({ url, headers, body }), CONFIG, NOW)).toEqual({ ok: true });
    const altered = request({ url, headers, body: body.replace('delivered', 'failed') });
    expect(await verifyTwilioCallback(altered, CONFIG, NOW)).toEqual(refused('body hash mismatch'));
  });
});

describe('twilio status callback parsing', () => {
  const sid = STATUS_PARAMS.MessageSid;
  const rows: [string, Record<string, string>, CallbackEvent[]][] = [
    ['delivered', {}, [{ status: 'delivered', providerMessageId: sid }]],
    [
      'read (WhatsApp read receipt)',
      { MessageStatus: 'read', SmsStatus: 'read' },
      [{ status: 'opened', providerMessageId: sid }],
    ],
    ['sent is not final', { MessageStatus: 'sent', SmsStatus: 'sent' }, []],
    ['queued is not final', { MessageStatus: 'queued', SmsStatus: 'queued' }, []],
    ['accepted is not final', { MessageStatus: 'accepted', SmsStatus: 'accepted' }, []],
    ['sending is not final', { MessageStatus: 'sending', SmsStatus: 'sending' }, []],
    [
      'undelivered 30003 (handset off: temporary, not suppressed)',
      { MessageStatus: 'undelivered', SmsStatus: 'undelivered', ErrorCode: '30003' },
      [{ status: 'failed', providerMessageId: sid, reason: 'twilio undelivered 30003' }],
    ],
    [
      'undelivered 30005 (unknown destination: suppressed)',
      { MessageStatus: 'undelivered', SmsStatus: 'undelivered', ErrorCode: '30005' },
      [
        {
          status: 'failed',
          providerMessageId: sid,
          reason: 'twilio undelivered 30005',
          suppressAddress: true,
        },
      ],
    ],
    [
      'undelivered 30006 (landline: suppressed)',
      { MessageStatus: 'undelivered', SmsStatus: 'undelivered', ErrorCode: '30006' },
      [
        {
          status: 'failed',
          providerMessageId: sid,
          reason: 'twilio undelivered 30006',
          suppressAddress: true,
        },
      ],
    ],
    [
      'failed 30007 (carrier filtering: not the address)',
      { MessageStatus: 'failed', SmsStatus: 'failed', ErrorCode: '30007' },
      [{ status: 'failed', providerMessageId: sid, reason: 'twilio failed 30007' }],
    ],
    [
      'failed 21610 (recipient replied STOP)',
      { MessageStatus: 'failed', SmsStatus: 'failed', ErrorCode: '21610' },
      [{ status: 'unsubscribed', providerMessageId: sid, reason: 'twilio failed 21610' }],
    ],
    [
      'failed without an error code',
      { MessageStatus: 'failed', SmsStatus: 'failed' },
      [{ status: 'failed', providerMessageId: sid, reason: 'twilio failed' }],
    ],
    [
      'canceled (scheduled message)',
      { MessageStatus: 'canceled', SmsStatus: 'canceled' },
      [{ status: 'failed', providerMessageId: sid, reason: 'twilio canceled' }],
    ],
  ];

  it.each(rows)('%s', (_name, overrides, expected) => {
    const body = new URLSearchParams({ ...STATUS_PARAMS, ...overrides }).toString();
    expect(parseTwilioCallback(body, new Headers())).toEqual(expected);
  });

  it('falls back to SmsStatus/SmsSid on older callbacks', () => {
    const body = new URLSearchParams({ SmsSid: 'SMold', SmsStatus: 'delivered' }).toString();
    expect(parseTwilioCallback(body, new Headers())).toEqual([
      { status: 'delivered', providerMessageId: 'SMold' },
    ]);
  });

  it('returns nothing for an empty or unrelated body', () => {
    expect(parseTwilioCallback('', new Headers())).toEqual([]);
    expect(parseTwilioCallback('{"not":"form"}', new Headers())).toEqual([]);
  });
});
