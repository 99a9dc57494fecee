import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { callbackHandlers } from '../../src/callbacks';
import type { CallbackEvent, CallbackStatus } from '../../src/callbacks/types';
import { base64 } from './helpers';
import { validCallbacks } from './payloads';

const NOW = Date.parse('2026-05-01T12:00:00Z');

/** One configured env per provider, so `verify` runs its real checks against garbage. */
const ENV: Record<string, Record<string, string>> = {
  twilio: { TWILIO_AUTH_TOKEN: 'token' },
  sendgrid: {
    SENDGRID_WEBHOOK_PUBLIC_KEY:
      'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==',
  },
  resend: {
    RESEND_WEBHOOK_SECRET: `whsec_${base64(new TextEncoder().encode('0123456789abcdef0123456789abcdef'))}`,
  },
  mailgun: { MAILGUN_WEBHOOK_SIGNING_KEY: 'key' },
  postmark: { POSTMARK_WEBHOOK_USER: 'user', POSTMARK_WEBHOOK_PASSWORD: 'another-password' },
  vonage: { VONAGE_SIGNATURE_SECRET: 'secret', VONAGE_SIGNATURE_METHOD: 'sha256' },
};

const SENDGRID_PUBLIC_KEY = ENV.sendgrid?.SENDGRID_WEBHOOK_PUBLIC_KEY ?? '';

/** What `configFromEnv` must build from ENV, provider by provider. */
const CONFIGS: Record<string, unknown> = {
  twilio: { authToken: 'token' },
  sendgrid: { publicKey: Uint8Array.from(atob(SENDGRID_PUBLIC_KEY), (c) => c.charCodeAt(0)) },
  resend: { key: new TextEncoder().encode('0123456789abcdef0123456789abcdef') },
  mailgun: { signingKey: 'key' },
  postmark: { user: 'user', password: 'another-password' },
  vonage: { signatureSecret: 'secret', method: 'sha256hmac' },
};

/**
 * The refusals each verifier documents. Garbage must get one of these, never a throw and never an
 * acceptance ('unverifiable request' is the answer to input that made the checks themselves fail).
 */
const TIMESTAMPED = ['missing signature', 'malformed timestamp', 'stale timestamp', 'signature mismatch'];
const REFUSALS: Record<string, string[]> = {
  twilio: ['missing signature', 'body hash mismatch', 'signature mismatch'],
  sendgrid: [...TIMESTAMPED, 'malformed signature'],
  resend: TIMESTAMPED,
  mailgun: TIMESTAMPED,
  postmark: ['missing credentials', 'malformed credentials', 'credentials mismatch'],
  vonage: TIMESTAMPED,
};

/** The fields a callback event may have; nothing else may appear. */
const EVENT_FIELDS = ['status', 'deliveryId', 'providerMessageId', 'reason', 'suppressAddress', 'occurredAt'];

const STATUSES: CallbackStatus[] = [
  'delivered',
  'bounced',
  'complained',
  'failed',
  'opened',
  'clicked',
  'unsubscribed',
];

/** Every header name any verifier reads, so garbage reaches the signature code, not just the "missing" branch. */
const HEADER_NAMES = [
  'x-twilio-signature',
  'x-twilio-email-event-webhook-signature',
  'x-twilio-email-event-webhook-timestamp',
  'svix-id',
  'svix-timestamp',
  'svix-signature',
  'authorization',
  'content-type',
];

const headerValue = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcXYZ019+/=,: .-_{}v'.split('')), maxLength: 120 }),
  fc.constantFrom(
    'Basic dXNlcjpwYXNzd29yZA==',
    'v1,AAAA',
    String(NOW / 1000),
    'application/json',
    'MEUCIQ==',
  ),
);

const garbageBody = fc.oneof(
  fc.string(),
  fc.json(),
  fc.constantFrom(
    '',
    '[]',
    '{}',
    'null',
    '{"signature":{"timestamp":"1777636800","token":"t","signature":"00"}}',
    `sig=00&timestamp=${NOW / 1000}&status=delivered`,
    '[{"event":"delivered"}]',
  ),
);

const garbageRequest = fc.record({
  url: fc.oneof(
    fc.webUrl({ withQueryParameters: true }),
    fc.string(),
    fc.constant(`https://h.test/x?sig=00&timestamp=${NOW / 1000}`),
  ),
  method: fc.constantFrom('POST', 'GET', 'PUT', '', 'post'),
  headers: fc.dictionary(fc.constantFrom(...HEADER_NAMES), headerValue),
  body: garbageBody,
});

/** What is wrong with a parsed event; empty when it has only known fields of the right types. */
function wellFormed(parsed: CallbackEvent): string[] {
  const problems: string[] = [];
  if (!STATUSES.includes(parsed.status)) problems.push(`status ${parsed.status}`);
  for (const [field, value] of Object.entries(parsed)) {
    if (!EVENT_FIELDS.includes(field)) problems.push(`unknown field ${field}`);
    else if (field === 'suppressAddress') {
      if (value !== true) problems.push('suppressAddress is only ever true');
    } else if (typeof value !== 'string' || value === '') problems.push(`${field} is not a non-empty string`);
  }
  if (parsed.occurredAt && new Date(parsed.occurredAt).toISOString() !== parsed.occurredAt)
    problems.push('occurredAt is not ISO 8601 UTC');
  return problems;
}

describe('callback registry', () => {
  it('has one handler per provider, each unconfigured without its secret', () => {
    expect(Object.keys(callbackHandlers).sort()).toEqual([
      'mailgun',
      'postmark',
      'resend',
      'sendgrid',
      'twilio',
      'vonage',
    ]);
    for (const handler of Object.values(callbackHandlers)) expect(handler.configFromEnv({})).toBeNull();
  });

  it('builds a config for each provider from its documented variables', () => {
    for (const [name, handler] of Object.entries(callbackHandlers)) {
      expect(handler.configFromEnv(ENV[name] ?? {}), name).toEqual(CONFIGS[name]);
    }
  });
});

describe.each(Object.keys(ENV))('%s callbacks on garbage input', (name) => {
  const handler = callbackHandlers[name];
  if (!handler) throw new Error(`no handler for ${name}`);
  const config = handler.configFromEnv(ENV[name] ?? {});

  const refusals = [...(REFUSALS[name] ?? []), 'unverifiable request'];
  const validCallback = validCallbacks[name];
  if (!validCallback) throw new Error(`no valid payloads for ${name}`);

  it('verify never throws, never accepts, and refuses with one of its documented reasons', async () => {
    await fc.assert(
      fc.asyncProperty(garbageRequest, async (fields) => {
        const verdict = await handler.verify(
          { ...fields, headers: new Headers(fields.headers) },
          config,
          NOW,
          { seen: async () => false },
        );
        expect(verdict).toEqual({ ok: false, reason: expect.toBeOneOf(refusals) });
      }),
      { numRuns: 150 },
    );
  });

  it('parse never throws and yields only well-formed events', () => {
    fc.assert(
      fc.property(
        garbageBody,
        fc.constantFrom('application/json', 'application/x-www-form-urlencoded', ''),
        (body, type) => {
          const events = handler.parse(body, new Headers(type ? { 'content-type': type } : {}));
          expect(events).toBeInstanceOf(Array);
          for (const parsed of events) expect(wellFormed(parsed), JSON.stringify(parsed)).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('parse returns exactly the events a valid callback carries, in order', () => {
    fc.assert(
      fc.property(validCallback, ({ body, contentType, events }) => {
        expect(handler.parse(body, new Headers({ 'content-type': contentType }))).toStrictEqual(events);
      }),
      { numRuns: 200 },
    );
  });
});
