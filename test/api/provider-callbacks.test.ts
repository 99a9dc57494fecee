import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import type { DeliveryStatus } from '../../src/domain/status';
import { createServices } from '../../src/services/container';
import {
  suppressAddress,
  suppressedAddresses,
  suppressionKey,
  suppressionKeyOf,
} from '../../src/services/recipients/suppressions';
import { D1ReplayGuard } from '../../src/storage/events-repo';
import { base64, hex, hmacBytes, p1363ToDer, sendgridSigningKey } from '../callbacks/helpers';
import { api, json, testEnv, uniqueUser } from '../helpers/api';
import { delivery, sentDelivery } from '../helpers/deliveries';

// Signatures are made here with WebCrypto (and standardwebhooks for Svix) following each
// provider's documentation, never with the code under test.

const _repo = createServices(testEnv).deliveries;
const encoder = new TextEncoder();

const TWILIO_TOKEN = 'twilio-auth-token-0123456789abcdef';
const RESEND_SECRET = `whsec_${base64(encoder.encode('herald-resend-secret-for-tests-32'))}`;
const MAILGUN_KEY = 'mailgun-signing-key-0123456789abcdef';
const POSTMARK = { user: 'herald', password: 'postmark-basic-password' };
const VONAGE_SECRET = 'vonage-signature-secret-0123456789';

let sendgridKey: CryptoKey;
let env: Env;

beforeAll(async () => {
  const key = await sendgridSigningKey();
  sendgridKey = key.privateKey;
  env = {
    ...testEnv,
    TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    SENDGRID_WEBHOOK_PUBLIC_KEY: key.publicKeyBase64,
    RESEND_WEBHOOK_SECRET: RESEND_SECRET,
    MAILGUN_WEBHOOK_SIGNING_KEY: MAILGUN_KEY,
    POSTMARK_WEBHOOK_USER: POSTMARK.user,
    POSTMARK_WEBHOOK_PASSWORD: POSTMARK.password,
    VONAGE_SIGNATURE_SECRET: VONAGE_SECRET,
  } as Env;
});

const nowSeconds = () => String(Math.floor(Date.now() / 1000));
const STALE_SECONDS = () => String(Math.floor(Date.now() / 1000) - 600);

const uniqueEmail = () => `${uniqueUser('ada')}@Example.com`;
const uniquePhone = () => `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;

async function isSuppressed(channel: 'email' | 'sms', value: string): Promise<boolean> {
  return (await suppressedAddresses(createServices(testEnv), [{ channel, value }])).has(
    suppressionKey(channel, value),
  );
}

function post(provider: string, body: string, headers: Record<string, string>, query = '') {
  return api('POST', `/v1/webhooks/${provider}${query}`, body, { key: null, headers, env });
}

// --- Twilio: base64 HMAC-SHA1(auth token, full URL + sorted name+value pairs) ----------------------
async function twilioPost(params: Record<string, string>, query: string, token = TWILIO_TOKEN) {
  const url = `https://herald.test/v1/webhooks/twilio${query}`;
  const signed = Object.keys(params)
    .sort()
    .reduce((acc, name) => acc + name + params[name], url);
  const signature = base64(await hmacBytes('SHA-1', token, signed));
  return post(
    'twilio',
    new URLSearchParams(params).toString(),
    {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-Twilio-Signature': signature,
    },
    query,
  );
}

const twilioStatus = (status: string, extra: Record<string, string> = {}) => ({
  AccountSid: 'ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  MessageSid: 'SM1234567890abcdef1234567890abcdef',
  MessageStatus: status,
  To: '+15558675310',
  ...extra,
});

// --- SendGrid: ECDSA P-256 over timestamp + body, DER signature in base64 ------------------------
async function sendgridPost(events: unknown[], timestamp = nowSeconds(), key = sendgridKey) {
  const body = JSON.stringify(events);
  const raw = new Uint8Array(
    await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, encoder.encode(timestamp + body)),
  );
  return post('sendgrid', body, {
    'Content-Type': 'application/json',
    'X-Twilio-Email-Event-Webhook-Signature': base64(p1363ToDer(raw)),
    'X-Twilio-Email-Event-Webhook-Timestamp': timestamp,
  });
}

// --- Resend: Svix signature, signed with the standardwebhooks library -----------------------------
function resendPost(payload: unknown, options: { atMs?: number; secret?: string; id?: string } = {}) {
  const body = JSON.stringify(payload);
  const id = options.id ?? `msg_${crypto.randomUUID()}`;
  const at = new Date(options.atMs ?? Date.now());
  return post('resend', body, {
    'Content-Type': 'application/json',
    'svix-id': id,
    'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
    'svix-signature': new Webhook(options.secret ?? RESEND_SECRET).sign(id, at, body),
  });
}

// --- Mailgun: hex HMAC-SHA256(signing key, timestamp + token) in the body ------------------------
async function mailgunBody(
  eventData: unknown,
  options: { timestamp?: string; token?: string; key?: string } = {},
) {
  const timestamp = options.timestamp ?? nowSeconds();
  const token = options.token ?? crypto.randomUUID().replace(/-/g, '');
  const signature = hex(await hmacBytes('SHA-256', options.key ?? MAILGUN_KEY, timestamp + token));
  return JSON.stringify({ signature: { timestamp, token, signature }, 'event-data': eventData });
}
const mailgunPost = (body: string, query = '') =>
  post('mailgun', body, { 'Content-Type': 'application/json' }, query);

// --- Postmark: HTTP Basic credentials --------------------------------------------------------------
function postmarkPost(payload: unknown, password = POSTMARK.password) {
  return post('postmark', JSON.stringify(payload), {
    'Content-Type': 'application/json',
    Authorization: `Basic ${btoa(`${POSTMARK.user}:${password}`)}`,
  });
}

// --- Vonage: MD5 of the sorted &name=value string + secret ---------------------------------------
async function vonagePost(params: Record<string, string>, secret = VONAGE_SECRET) {
  const signed = Object.keys(params)
    .sort()
    .map((name) => `&${name}=${(params[name] ?? '').replaceAll('&', '_').replaceAll('=', '_')}`)
    .join('');
  const sig = hex(new Uint8Array(await crypto.subtle.digest('MD5', encoder.encode(signed + secret))));
  return post('vonage', new URLSearchParams({ ...params, sig }).toString(), {
    'Content-Type': 'application/x-www-form-urlencoded',
  });
}

const vonageReceipt = (deliveryId: string, status: string, errCode = '0', timestamp = nowSeconds()) => ({
  'client-ref': deliveryId,
  'err-code': errCode,
  'message-timestamp': '2026-05-01 12:00:00',
  messageId: '0B00000127FDBC63',
  msisdn: '447700900123',
  nonce: crypto.randomUUID(),
  status,
  timestamp,
});

async function expectStatus(id: string, status: DeliveryStatus, provider?: string) {
  const after = await delivery(id);
  expect(after.status).toBe(status);
  if (provider) expect(after.history.at(-1)).toMatchObject({ status, provider });
  return after;
}

describe('provider callbacks: genuine requests move the delivery', () => {
  it('twilio: a signed form post, delivery id from the signed URL, needs no API key', async () => {
    const id = await sentDelivery({ channel: 'sms', phone: uniquePhone() }, 'test');
    const res = await twilioPost(twilioStatus('delivered'), `?deliveryId=${id}`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ received: 1 });
    await expectStatus(id, 'delivered', 'twilio');
  });

  it('twilio: failed 30005 (unknown handset) fails the delivery and suppresses the number', async () => {
    const phone = uniquePhone();
    const id = await sentDelivery({ channel: 'sms', phone }, 'test');
    const res = await twilioPost(twilioStatus('undelivered', { ErrorCode: '30005' }), `?deliveryId=${id}`);
    expect(res.status).toBe(200);
    const after = await expectStatus(id, 'failed', 'twilio');
    expect(after.reason).toBe('twilio undelivered 30005');
    expect(await isSuppressed('sms', phone)).toBe(true);
  });

  it('twilio: 21610 (STOP) marks the delivery unsubscribed and suppresses the number', async () => {
    const phone = uniquePhone();
    const id = await sentDelivery({ channel: 'sms', phone }, 'test');
    await twilioPost(twilioStatus('undelivered', { ErrorCode: '21610' }), `?deliveryId=${id}`);
    await expectStatus(id, 'unsubscribed', 'twilio');
    expect(await isSuppressed('sms', phone)).toBe(true);
  });

  it('sendgrid: a batch applies in order (delivered then open), a bounce suppresses the address', async () => {
    const email = uniqueEmail();
    const opened = await sentDelivery({ channel: 'email', email: uniqueEmail() }, 'test');
    const bounced = await sentDelivery({ channel: 'email', email }, 'test');
    const ts = Math.floor(Date.now() / 1000);
    const res = await sendgridPost([
      { event: 'delivered', delivery_id: opened, sg_message_id: 'abc.filter1', timestamp: ts },
      { event: 'open', delivery_id: opened, timestamp: ts },
      {
        event: 'bounce',
        delivery_id: bounced,
        status: '5.1.1',
        reason: `550 ${email} unknown`,
        timestamp: ts,
      },
    ]);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ received: 3 });
    const after = await expectStatus(opened, 'opened', 'sendgrid');
    expect(after.history.map((h) => h.status)).toEqual(['created', 'sent', 'delivered', 'opened']);
    const bouncedAfter = await expectStatus(bounced, 'bounced', 'sendgrid');
    // The provider's free text (which holds the address) never reaches the history.
    expect(JSON.stringify(bouncedAfter.history)).not.toContain(email);
    expect(await isSuppressed('email', email)).toBe(true);
    // Suppression matches the address however it is cased or padded.
    expect(await isSuppressed('email', `  ${email.toUpperCase()} `)).toBe(true);
  });

  it('sendgrid: an unsubscribe marks the delivery and suppresses with reason unsubscribed', async () => {
    const email = uniqueEmail();
    const id = await sentDelivery({ channel: 'email', email }, 'test');
    await sendgridPost([{ event: 'unsubscribe', delivery_id: id, timestamp: Math.floor(Date.now() / 1000) }]);
    await expectStatus(id, 'unsubscribed', 'sendgrid');
    expect(await suppressionReasonOf('email', email)).toBe('unsubscribed');
  });

  it('resend: a complaint marks the delivery complained and suppresses the address', async () => {
    const email = uniqueEmail();
    const id = await sentDelivery({ channel: 'email', email }, 'test');
    const res = await resendPost({
      type: 'email.complained',
      created_at: new Date().toISOString(),
      data: { email_id: '56761188-7520-42d8-8898-ff6fc54ce618', tags: { delivery_id: id } },
    });
    expect(res.status).toBe(200);
    await expectStatus(id, 'complained', 'resend');
    expect(await suppressionReasonOf('email', email)).toBe('complained');
  });

  it('mailgun: a permanent failure bounces and suppresses; the same token again is refused', async () => {
    const email = uniqueEmail();
    const id = await sentDelivery({ channel: 'email', email }, 'test');
    const body = await mailgunBody({
      event: 'failed',
      severity: 'permanent',
      reason: 'bounce',
      'delivery-status': { code: 550 },
      timestamp: Date.now() / 1000,
      'user-variables': { delivery_id: id },
    });
    const res = await mailgunPost(body);
    expect(res.status).toBe(200);
    await expectStatus(id, 'bounced', 'mailgun');
    expect(await isSuppressed('email', email)).toBe(true);

    const historyBefore = (await delivery(id)).history;
    const replayed = await mailgunPost(body);
    expect(replayed.status).toBe(401);
    expect((await json<{ error: { code: string } }>(replayed)).error.code).toBe('unauthorized');
    expect((await delivery(id)).history).toEqual(historyBefore);
  });

  it('postmark: Basic credentials; Delivery then a HardBounce', async () => {
    const email = uniqueEmail();
    const id = await sentDelivery({ channel: 'email', email }, 'test');
    const delivered = await postmarkPost({
      RecordType: 'Delivery',
      MessageID: 'pm-1',
      Metadata: { delivery_id: id },
    });
    expect(delivered.status).toBe(200);
    await expectStatus(id, 'delivered', 'postmark');
    await postmarkPost({
      RecordType: 'Bounce',
      Type: 'HardBounce',
      MessageID: 'pm-1',
      Metadata: { delivery_id: id },
    });
    await expectStatus(id, 'bounced', 'postmark');
    expect(await isSuppressed('email', email)).toBe(true);
  });

  it('vonage: delivered, and failed with err-code 3 suppresses the number', async () => {
    const ok = await sentDelivery({ channel: 'sms', phone: uniquePhone() }, 'test');
    expect((await vonagePost(vonageReceipt(ok, 'delivered'))).status).toBe(200);
    await expectStatus(ok, 'delivered', 'vonage');

    const phone = uniquePhone();
    const dead = await sentDelivery({ channel: 'sms', phone }, 'test');
    expect((await vonagePost(vonageReceipt(dead, 'failed', '3'))).status).toBe(200);
    await expectStatus(dead, 'failed', 'vonage');
    expect(await isSuppressed('sms', phone)).toBe(true);
  });
});

/** The stored reason, found by the hash the service computes (the only code that knows the key). */
async function suppressionReasonOf(channel: 'email' | 'sms', value: string): Promise<string | null> {
  const { addressHash } = await suppressionKeyOf(createServices(testEnv), { channel, value });
  const row = await testEnv.DB.prepare(
    'SELECT reason FROM suppressions WHERE channel = ? AND address_hash = ?',
  )
    .bind(channel, addressHash)
    .first<{ reason: string }>();
  return row?.reason ?? null;
}

describe('provider callbacks: refused requests write nothing', () => {
  it('forged signatures are 401 for every provider, and nothing changes', async () => {
    const sms = await sentDelivery({ channel: 'sms', phone: uniquePhone() }, 'test');
    const email = uniqueEmail();
    const mail = await sentDelivery({ channel: 'email', email }, 'test');
    const forgedKey = (
      (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ])) as CryptoKeyPair
    ).privateKey;
    const otherSecret = `whsec_${base64(encoder.encode('an-attacker-chosen-secret-32byte'))}`;
    const bounce = {
      event: 'failed',
      severity: 'permanent',
      reason: 'bounce',
      'user-variables': { delivery_id: mail },
    };
    const responses = [
      await twilioPost(
        twilioStatus('undelivered', { ErrorCode: '30005' }),
        `?deliveryId=${sms}`,
        'wrong-token',
      ),
      await sendgridPost([{ event: 'bounce', delivery_id: mail }], nowSeconds(), forgedKey),
      await resendPost(
        { type: 'email.bounced', data: { tags: { delivery_id: mail } } },
        { secret: otherSecret },
      ),
      await mailgunPost(await mailgunBody(bounce, { key: 'not-the-key' })),
      await postmarkPost(
        { RecordType: 'Bounce', Type: 'HardBounce', Metadata: { delivery_id: mail } },
        'guess',
      ),
      await vonagePost(vonageReceipt(sms, 'failed', '3'), 'not-the-secret'),
      // No signature at all.
      await post('sendgrid', JSON.stringify([{ event: 'bounce', delivery_id: mail }]), {
        'Content-Type': 'application/json',
      }),
    ];
    for (const res of responses) {
      expect(res.status).toBe(401);
      const body = await json<{ error: { code: string; message: string } }>(res);
      expect(body.error.code).toBe('unauthorized');
      expect(body.error.message).not.toMatch(/signature mismatch|credentials mismatch/);
    }
    await expectStatus(sms, 'sent');
    await expectStatus(mail, 'sent');
    expect((await delivery(mail)).history).toHaveLength(2);
    expect(await isSuppressed('email', email)).toBe(false);
  });

  it('stale timestamps are 401 (sendgrid, resend, mailgun, vonage)', async () => {
    const mail = await sentDelivery({ channel: 'email', email: uniqueEmail() }, 'test');
    const sms = await sentDelivery({ channel: 'sms', phone: uniquePhone() }, 'test');
    const responses = [
      await sendgridPost([{ event: 'delivered', delivery_id: mail }], STALE_SECONDS()),
      await resendPost(
        { type: 'email.delivered', data: { tags: { delivery_id: mail } } },
        { atMs: Date.now() - 600_000 },
      ),
      await mailgunPost(
        await mailgunBody(
          { event: 'delivered', 'user-variables': { delivery_id: mail } },
          { timestamp: STALE_SECONDS() },
        ),
      ),
      await vonagePost(vonageReceipt(sms, 'delivered', '0', STALE_SECONDS())),
    ];
    expect(responses.map((res) => res.status)).toEqual([401, 401, 401, 401]);
    await expectStatus(mail, 'sent');
    await expectStatus(sms, 'sent');
  });

  it('unknown or unconfigured providers are 404', async () => {
    for (const provider of ['unknown', 'constructor', '__proto__', 'ses']) {
      const res = await post(provider, '{}', { 'Content-Type': 'application/json' });
      expect(res.status).toBe(404);
      expect((await json<{ error: { code: string } }>(res)).error.code).toBe('not_found');
    }
    const unconfigured = await api('POST', '/v1/webhooks/sendgrid', '[]', {
      key: null,
      headers: { 'Content-Type': 'application/json' },
    });
    expect(unconfigured.status).toBe(404);
  });

  it('a replay store that cannot answer is 503 (the provider retries), and nothing is written', async () => {
    const mail = await sentDelivery({ channel: 'email', email: uniqueEmail() }, 'test');
    const failingDb = new Proxy(testEnv.DB, {
      get(target, property) {
        if (property === 'prepare')
          return (sql: string) => {
            if (sql.includes('callback_replays')) throw new Error('D1 unavailable');
            return target.prepare(sql);
          };
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const body = await mailgunBody({ event: 'delivered', 'user-variables': { delivery_id: mail } });
    const res = await api('POST', '/v1/webhooks/mailgun', body, {
      key: null,
      headers: { 'Content-Type': 'application/json' },
      env: { ...env, DB: failingDb } as Env,
    });
    expect(res.status).toBe(503);
    await expectStatus(mail, 'sent');
  });
});

describe('provider callbacks: matching and the state machine', () => {
  it('an open after a bounce is recorded in the history; the status stays bounced', async () => {
    const id = await sentDelivery({ channel: 'email', email: uniqueEmail() }, 'test');
    const ts = Math.floor(Date.now() / 1000);
    await sendgridPost([{ event: 'bounce', delivery_id: id, status: '5.1.1', timestamp: ts }]);
    await sendgridPost([{ event: 'open', delivery_id: id, timestamp: ts }]);
    const after = await expectStatus(id, 'bounced');
    expect(after.reason).toBe('sendgrid bounce 5.1.1');
    expect(after.history.map((h) => h.status)).toEqual(['created', 'sent', 'bounced', 'opened']);
  });

  it('a delivered after a click is history only: the status stays clicked', async () => {
    const id = await sentDelivery({ channel: 'email', email: uniqueEmail() }, 'test');
    const ts = Math.floor(Date.now() / 1000);
    await sendgridPost([
      { event: 'click', delivery_id: id, timestamp: ts },
      { event: 'delivered', delivery_id: id, timestamp: ts },
    ]);
    const after = await expectStatus(id, 'clicked');
    expect(after.history.map((h) => h.status)).toEqual(['created', 'sent', 'clicked', 'delivered']);
  });

  it('events without a known delivery of the provider’s channel are counted but change nothing', async () => {
    const sms = await sentDelivery({ channel: 'sms', phone: uniquePhone() }, 'test');
    // Twilio without ?deliveryId= carries only its MessageSid: not looked up.
    const noId = await twilioPost(twilioStatus('delivered'), '');
    expect(await json(noId)).toEqual({ received: 1 });
    // An email provider's event naming an SMS delivery, and an id that does not exist.
    await sendgridPost([
      { event: 'bounce', delivery_id: sms },
      { event: 'bounce', delivery_id: 'dlv_0000000000zzzzzzzzzzzzzzzz' },
    ]);
    // A delivery id in the query string is trusted only where the provider signs the URL.
    const mail = await sentDelivery({ channel: 'email', email: uniqueEmail() }, 'test');
    const unsigned = await mailgunPost(await mailgunBody({ event: 'complained' }), `?deliveryId=${mail}`);
    expect(await json(unsigned)).toEqual({ received: 1 });
    for (const id of [sms, mail]) expect((await expectStatus(id, 'sent')).history).toHaveLength(2);
  });
});

describe('suppression list', () => {
  it('answers a batch in one call, normalising emails, and never stores the address', async () => {
    const email = uniqueEmail();
    const phone = uniquePhone();
    const services = createServices(testEnv);
    await suppressAddress(services, { channel: 'email', value: email }, 'bounced');
    await suppressAddress(services, { channel: 'sms', value: phone }, 'failed');
    const found = await suppressedAddresses(services, [
      { channel: 'email', value: email.toLowerCase() },
      { channel: 'email', value: 'someone-else@example.com' },
      { channel: 'sms', value: phone },
      { channel: 'email', value: phone }, // same value, other channel
    ]);
    expect([...found].sort()).toEqual(
      [suppressionKey('email', email.toLowerCase()), suppressionKey('sms', phone)].sort(),
    );
    const rows = await testEnv.DB.prepare('SELECT * FROM suppressions').all<Record<string, unknown>>();
    expect(JSON.stringify(rows.results)).not.toContain(email.toLowerCase());
    expect(JSON.stringify(rows.results)).not.toContain(phone);
  });

  it('the hash is keyed: another BLIND_INDEX_KEY finds nothing', async () => {
    const email = uniqueEmail();
    await suppressAddress(createServices(testEnv), { channel: 'email', value: email }, 'bounced');
    const other = { ...testEnv, BLIND_INDEX_KEY: base64(new Uint8Array(32).fill(7)) } as Env;
    expect(
      (await suppressedAddresses(createServices(other), [{ channel: 'email', value: email }])).size,
    ).toBe(0);
    expect(
      (await suppressedAddresses(createServices(testEnv), [{ channel: 'email', value: email }])).size,
    ).toBe(1);
  });
});

describe('D1ReplayGuard', () => {
  it('refuses a key within its lifetime and accepts it again once expired', async () => {
    let now = Date.now();
    const guard = new D1ReplayGuard(
      testEnv.DB,
      () => now,
      () => 1,
    );
    const key = `test:${crypto.randomUUID()}`;
    expect(await guard.seen(key, 60)).toBe(false);
    expect(await guard.seen(key, 60)).toBe(true);
    now += 61_000;
    expect(await guard.seen(key, 60)).toBe(false);
  });

  it('release() forgets what this instance recorded', async () => {
    const guard = new D1ReplayGuard(testEnv.DB, Date.now, () => 1);
    const key = `test:${crypto.randomUUID()}`;
    expect(await guard.seen(key, 60)).toBe(false);
    await guard.release();
    expect(await new D1ReplayGuard(testEnv.DB, Date.now, () => 1).seen(key, 60)).toBe(false);
  });
});
