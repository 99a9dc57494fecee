import { describe, expect, it } from 'vitest';
import {
  derToP1363,
  parseSendgridCallback,
  sendgridCallbackConfigFromEnv,
  verifySendgridCallback,
} from '../../src/callbacks/sendgrid';
import { CallbackConfigError, type CallbackEvent } from '../../src/callbacks/types';
import {
  base64,
  memoryReplayGuard,
  p1363ToDer,
  refused,
  request,
  STALE_OFFSETS_SECONDS,
  sendgridSigningKey,
} from './helpers';

const encoder = new TextEncoder();

// Published vector: sendgrid/sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js
// (a DER signature produced by SendGrid's tooling, independent of WebCrypto and of this code).
const VECTOR = {
  publicKey:
    'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==',
  otherPublicKey:
    'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==',
  signature:
    'MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=',
  badSignature:
    'MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=',
  timestamp: '1588788367',
  payload: '{"category":"example_payload","event":"test_event","message_id":"message_id"}',
};
const VECTOR_NOW = Number(VECTOR.timestamp) * 1000 + 30_000;

const configOf = (publicKey: string) => {
  const config = sendgridCallbackConfigFromEnv({ SENDGRID_WEBHOOK_PUBLIC_KEY: publicKey });
  if (!config) throw new Error('expected a config');
  return config;
};

function signedHeaders(signature: string, timestamp: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-twilio-email-event-webhook-signature': signature,
    'x-twilio-email-event-webhook-timestamp': timestamp,
  };
}

async function sign(privateKey: CryptoKey, timestamp: string, body: string): Promise<string> {
  const raw = new Uint8Array(
    await crypto.subtle.sign(
      { name: 'ECDSA', hash: 'SHA-256' },
      privateKey,
      encoder.encode(timestamp + body),
    ),
  );
  return base64(p1363ToDer(raw));
}

describe('sendgrid callback config', () => {
  it('is null when unset, reads base64 DER or PEM, and refuses non-base64', () => {
    expect(sendgridCallbackConfigFromEnv({})).toBeNull();
    expect(configOf(VECTOR.publicKey).publicKey.length).toBe(91); // P-256 SPKI
    const pem = `-----BEGIN PUBLIC KEY-----\n${VECTOR.publicKey.slice(0, 64)}\n${VECTOR.publicKey.slice(64)}\n-----END PUBLIC KEY-----`;
    expect(configOf(pem).publicKey).toEqual(configOf(VECTOR.publicKey).publicKey);
    expect(() => sendgridCallbackConfigFromEnv({ SENDGRID_WEBHOOK_PUBLIC_KEY: 'not base64!' })).toThrow(
      CallbackConfigError,
    );
  });
});

describe('sendgrid signature: published vector', () => {
  const vectorRequest = (signature: string, body: string, timestamp = VECTOR.timestamp) =>
    request({ headers: signedHeaders(signature, timestamp), body });

  it('accepts the SendGrid library test vector', async () => {
    const verdict = await verifySendgridCallback(
      vectorRequest(VECTOR.signature, VECTOR.payload),
      configOf(VECTOR.publicKey),
      VECTOR_NOW,
    );
    expect(verdict).toEqual({ ok: true });
  });

  it.each([
    ['another public key', VECTOR.signature, VECTOR.payload, VECTOR.otherPublicKey],
    ['an altered payload', VECTOR.signature, 'payload', VECTOR.publicKey],
    ['an altered signature', VECTOR.badSignature, VECTOR.payload, VECTOR.publicKey],
  ])('refuses the vector with %s', async (_name, signature, payload, publicKey) => {
    const verdict = await verifySendgridCallback(
      vectorRequest(signature, payload),
      configOf(publicKey),
      VECTOR_NOW,
    );
    expect(verdict.ok).toBe(false);
  });

  it('refuses the vector once its timestamp is more than 5 minutes old', async () => {
    const late = Number(VECTOR.timestamp) * 1000 + 301_000;
    const verdict = await verifySendgridCallback(
      vectorRequest(VECTOR.signature, VECTOR.payload),
      configOf(VECTOR.publicKey),
      late,
    );
    expect(verdict).toEqual(refused('stale timestamp'));
  });
});

describe('sendgrid signature: generated P-256 keys', () => {
  const NOW = Date.parse('2026-05-01T12:00:00Z');
  const TIMESTAMP = String(NOW / 1000);
  const BODY = JSON.stringify([
    { email: 'a@example.com', event: 'delivered', sg_message_id: 'abc.filter0001', timestamp: NOW / 1000 },
  ]);

  it('accepts genuine signatures (many, so r and s with and without a high bit are covered)', async () => {
    const { privateKey, publicKeyBase64 } = await sendgridSigningKey();
    const config = configOf(publicKeyBase64);
    for (let i = 0; i < 24; i++) {
      const body = `${BODY}${' '.repeat(i)}`;
      const headers = signedHeaders(await sign(privateKey, TIMESTAMP, body), TIMESTAMP);
      expect(await verifySendgridCallback(request({ headers, body }), config, NOW)).toEqual({ ok: true });
    }
  });

  it('refuses a signature made with another key (forged)', async () => {
    const genuine = await sendgridSigningKey();
    const attacker = await sendgridSigningKey();
    const headers = signedHeaders(await sign(attacker.privateKey, TIMESTAMP, BODY), TIMESTAMP);
    const verdict = await verifySendgridCallback(
      request({ headers, body: BODY }),
      configOf(genuine.publicKeyBase64),
      NOW,
    );
    expect(verdict).toEqual(refused('signature mismatch'));
  });

  it('refuses an altered body and an altered timestamp', async () => {
    const { privateKey, publicKeyBase64 } = await sendgridSigningKey();
    const config = configOf(publicKeyBase64);
    const signature = await sign(privateKey, TIMESTAMP, BODY);
    const alteredBody = BODY.replace('delivered', 'bounce');
    expect(
      await verifySendgridCallback(
        request({ headers: signedHeaders(signature, TIMESTAMP), body: alteredBody }),
        config,
        NOW,
      ),
    ).toEqual(refused('signature mismatch'));
    const otherTimestamp = String(Number(TIMESTAMP) - 1);
    expect(
      await verifySendgridCallback(
        request({ headers: signedHeaders(signature, otherTimestamp), body: BODY }),
        config,
        NOW,
      ),
    ).toEqual(refused('signature mismatch'));
  });

  it.each(STALE_OFFSETS_SECONDS)('refuses a genuinely signed timestamp %s', async (_name, offsetSeconds) => {
    const { privateKey, publicKeyBase64 } = await sendgridSigningKey();
    const timestamp = String(NOW / 1000 + offsetSeconds);
    const headers = signedHeaders(await sign(privateKey, timestamp, BODY), timestamp);
    const verdict = await verifySendgridCallback(
      request({ headers, body: BODY }),
      configOf(publicKeyBase64),
      NOW,
    );
    expect(verdict).toEqual(refused('stale timestamp'));
  });

  it('accepts a timestamp 4 minutes old', async () => {
    const { privateKey, publicKeyBase64 } = await sendgridSigningKey();
    const timestamp = String(NOW / 1000 - 240);
    const headers = signedHeaders(await sign(privateKey, timestamp, BODY), timestamp);
    expect(
      await verifySendgridCallback(request({ headers, body: BODY }), configOf(publicKeyBase64), NOW),
    ).toEqual({
      ok: true,
    });
  });

  it('refuses missing headers, a non-numeric timestamp and a non-DER signature', async () => {
    const { privateKey, publicKeyBase64 } = await sendgridSigningKey();
    const config = configOf(publicKeyBase64);
    const signature = await sign(privateKey, TIMESTAMP, BODY);
    const cases: [Record<string, string>, string][] = [
      [{}, 'missing signature'],
      [{ 'x-twilio-email-event-webhook-signature': signature }, 'missing signature'],
      [signedHeaders(signature, `${TIMESTAMP}.5`), 'malformed timestamp'],
      [signedHeaders(base64(new Uint8Array(64).fill(1)), TIMESTAMP), 'malformed signature'],
      [signedHeaders('%%%', TIMESTAMP), 'malformed signature'],
    ];
    for (const [headers, reason] of cases) {
      expect(await verifySendgridCallback(request({ headers, body: BODY }), config, NOW)).toEqual({
        ok: false,
        reason,
      });
    }
  });

  it('refuses the same signed request a second time when given a replay guard', async () => {
    const { privateKey, publicKeyBase64 } = await sendgridSigningKey();
    const config = configOf(publicKeyBase64);
    const replay = memoryReplayGuard();
    const genuine = request({
      headers: signedHeaders(await sign(privateKey, TIMESTAMP, BODY), TIMESTAMP),
      body: BODY,
    });
    expect(await verifySendgridCallback(genuine, config, NOW, replay)).toEqual({ ok: true });
    expect(await verifySendgridCallback(genuine, config, NOW, replay)).toEqual(refused('replayed'));
    // Each check spends the key for twice the 5 minute tolerance.
    expect(replay.ttls).toEqual([600, 600]);
    // A retry SendGrid signs afresh is a different request and goes through.
    const later = String(Number(TIMESTAMP) + 60);
    const retry = request({ headers: signedHeaders(await sign(privateKey, later, BODY), later), body: BODY });
    expect(await verifySendgridCallback(retry, config, NOW + 60_000, replay)).toEqual({ ok: true });
  });

  it('refuses a malleated copy (s negated) of a signature already seen', async () => {
    const { privateKey, publicKeyBase64 } = await sendgridSigningKey();
    const config = configOf(publicKeyBase64);
    const raw = new Uint8Array(
      await crypto.subtle.sign(
        { name: 'ECDSA', hash: 'SHA-256' },
        privateKey,
        encoder.encode(TIMESTAMP + BODY),
      ),
    );
    const n = BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551');
    const s = BigInt(`0x${Array.from(raw.subarray(32), (b) => b.toString(16).padStart(2, '0')).join('')}`);
    const negated = (n - s).toString(16).padStart(64, '0');
    const malleated = Uint8Array.from([
      ...raw.subarray(0, 32),
      ...(negated.match(/../g) ?? []).map((h) => Number.parseInt(h, 16)),
    ]);
    const genuine = request({ headers: signedHeaders(base64(p1363ToDer(raw)), TIMESTAMP), body: BODY });
    const copy = request({ headers: signedHeaders(base64(p1363ToDer(malleated)), TIMESTAMP), body: BODY });
    // The malleated signature is valid on its own...
    expect(await verifySendgridCallback(copy, config, NOW, memoryReplayGuard())).toEqual({ ok: true });
    // ...but it is the same signature as far as replay goes.
    const replay = memoryReplayGuard();
    expect(await verifySendgridCallback(genuine, config, NOW, replay)).toEqual({ ok: true });
    expect(await verifySendgridCallback(copy, config, NOW, replay)).toEqual(refused('replayed'));
  });

  it('refuses, without throwing, when the replay store fails', async () => {
    const { privateKey, publicKeyBase64 } = await sendgridSigningKey();
    const genuine = request({
      headers: signedHeaders(await sign(privateKey, TIMESTAMP, BODY), TIMESTAMP),
      body: BODY,
    });
    const broken = {
      seen: async (): Promise<boolean> => {
        throw new Error('store down');
      },
    };
    expect(await verifySendgridCallback(genuine, configOf(publicKeyBase64), NOW, broken)).toEqual(
      refused('replay check unavailable'),
    );
  });

  it('does not consult the replay guard for a forged request', async () => {
    const genuine = await sendgridSigningKey();
    const attacker = await sendgridSigningKey();
    const replay = memoryReplayGuard();
    const headers = signedHeaders(await sign(attacker.privateKey, TIMESTAMP, BODY), TIMESTAMP);
    await verifySendgridCallback(
      request({ headers, body: BODY }),
      configOf(genuine.publicKeyBase64),
      NOW,
      replay,
    );
    expect(replay.keys).toEqual([]);
  });
});

describe('derToP1363', () => {
  const r = new Uint8Array(32).fill(0x11);
  const s = new Uint8Array(32).fill(0x22);
  const raw = new Uint8Array([...r, ...s]);

  it('round-trips minimal DER, including padded and short integers', () => {
    expect(derToP1363(p1363ToDer(raw))).toEqual(raw);
    const highBits = new Uint8Array([...new Uint8Array(32).fill(0xff), ...new Uint8Array(32).fill(0x80)]);
    expect(derToP1363(p1363ToDer(highBits))).toEqual(highBits);
    const shortR = new Uint8Array([...new Uint8Array(31), 0x05, ...s]);
    expect(derToP1363(p1363ToDer(shortR))).toEqual(shortR);
  });

  it.each([
    ['trailing bytes', Uint8Array.from([...p1363ToDer(raw), 0])],
    ['a wrong sequence tag', Uint8Array.from([0x31, ...p1363ToDer(raw).subarray(1)])],
    ['a truncated signature', p1363ToDer(raw).subarray(0, 40)],
    ['an integer longer than 32 bytes', Uint8Array.from([0x30, 37, 0x02, 33, 0x01, ...r, 0x02, 1, 0x01])],
    ['a negative integer', Uint8Array.from([0x30, 6, 0x02, 1, 0x80, 0x02, 1, 0x01])],
    ['an empty input', new Uint8Array()],
  ])('rejects %s', (_name, der) => {
    expect(derToP1363(der)).toBeUndefined();
  });
});

describe('sendgrid event parsing', () => {
  // Events from SendGrid's Event Webhook reference examples, with Herald's custom arg added.
  const common = {
    email: 'example@test.com',
    timestamp: 1513299569,
    'smtp-id': '<14c5d75ce93.dfd.64b469@ismtpd-555>',
    category: 'cat facts',
    sg_event_id: 'rbtnWrG1DVDGGGFHFyun0A==',
    sg_message_id: '14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0',
    delivery_id: 'dlv_01hzzzzzzzzzzzzzzzzzzzzzzz',
  };
  const base = {
    deliveryId: 'dlv_01hzzzzzzzzzzzzzzzzzzzzzzz',
    providerMessageId: '14c5d75ce93',
    occurredAt: '2017-12-15T00:59:29.000Z',
  };
  const rows: [string, Record<string, unknown>, CallbackEvent[]][] = [
    ['processed', { event: 'processed' }, []],
    ['deferred', { event: 'deferred', response: '400 try again later', attempt: '5' }, []],
    ['delivered', { event: 'delivered', response: '250 OK' }, [{ status: 'delivered', ...base }]],
    [
      'bounce (type bounce)',
      { event: 'bounce', reason: '500 unknown recipient', status: '5.0.0', type: 'bounce' },
      [{ status: 'bounced', ...base, reason: 'sendgrid bounce 5.0.0', suppressAddress: true }],
    ],
    [
      'bounce without a type',
      { event: 'bounce', reason: '500 unknown recipient', status: '5.0.0' },
      [{ status: 'bounced', ...base, reason: 'sendgrid bounce 5.0.0', suppressAddress: true }],
    ],
    [
      'blocked (bounce with type blocked)',
      { event: 'bounce', reason: '500 unknown recipient', status: '5.0.0', type: 'blocked' },
      [{ status: 'failed', ...base, reason: 'sendgrid blocked 5.0.0' }],
    ],
    [
      'dropped',
      { event: 'dropped', reason: 'Bounced Address', status: '5.0.0' },
      [{ status: 'failed', ...base, reason: 'sendgrid dropped: Bounced Address' }],
    ],
    [
      'dropped with an undocumented reason keeps the reason out',
      { event: 'dropped', reason: 'rejected for someone@example.com', status: '5.0.0' },
      [{ status: 'failed', ...base, reason: 'sendgrid dropped' }],
    ],
    [
      'open',
      { event: 'open', useragent: 'Mozilla/4.0', ip: '255.255.255.255' },
      [{ status: 'opened', ...base }],
    ],
    ['click', { event: 'click', url: 'http://www.sendgrid.com/' }, [{ status: 'clicked', ...base }]],
    [
      'spamreport',
      { event: 'spamreport' },
      [{ status: 'complained', ...base, reason: 'sendgrid spamreport', suppressAddress: true }],
    ],
    [
      'unsubscribe',
      { event: 'unsubscribe' },
      [{ status: 'unsubscribed', ...base, reason: 'sendgrid unsubscribe' }],
    ],
    [
      'group_unsubscribe',
      { event: 'group_unsubscribe', asm_group_id: 10 },
      [{ status: 'unsubscribed', ...base, reason: 'sendgrid group_unsubscribe' }],
    ],
    ['group_resubscribe', { event: 'group_resubscribe', asm_group_id: 10 }, []],
  ];

  it.each(rows)('%s', (_name, fields, expected) => {
    expect(parseSendgridCallback(JSON.stringify([{ ...common, ...fields }]), new Headers())).toEqual(
      expected,
    );
  });

  it('keeps the SMTP text (which can hold the address) out of the reason', () => {
    const [parsed] = parseSendgridCallback(
      JSON.stringify([
        { ...common, event: 'bounce', reason: '550 5.1.1 <example@test.com>: unknown', status: '5.1.1' },
      ]),
      new Headers(),
    );
    expect(parsed?.reason).toBe('sendgrid bounce 5.1.1');
  });

  it('parses a batch in order, skipping what is not an event', () => {
    const batch = [
      { ...common, event: 'delivered' },
      'garbage',
      null,
      {
        ...common,
        event: 'open',
        sg_message_id: 'W3nR6hY0S0mR7dFq1p2x3A.filterdrecv-1-2-3.0',
        delivery_id: undefined,
      },
    ];
    expect(parseSendgridCallback(JSON.stringify(batch), new Headers())).toEqual([
      { status: 'delivered', ...base },
      { status: 'opened', providerMessageId: 'W3nR6hY0S0mR7dFq1p2x3A', occurredAt: base.occurredAt },
    ]);
  });

  it('returns nothing for a body that is not a JSON array', () => {
    expect(parseSendgridCallback('{"event":"delivered"}', new Headers())).toEqual([]);
    expect(parseSendgridCallback('not json', new Headers())).toEqual([]);
  });
});
