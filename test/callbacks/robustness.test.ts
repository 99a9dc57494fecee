import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { callbackHandlers } from '../../src/callbacks';
import type { CallbackStatus } from '../../src/callbacks/types';
import { base64 } from './helpers';

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
      expect(handler.configFromEnv(ENV[name] ?? {}), name).not.toBeNull();
    }
  });
});

describe.each(Object.keys(ENV))('%s callbacks on garbage input', (name) => {
  const handler = callbackHandlers[name];
  if (!handler) throw new Error(`no handler for ${name}`);
  const config = handler.configFromEnv(ENV[name] ?? {});

  it('verify never throws and never accepts', async () => {
    await fc.assert(
      fc.asyncProperty(garbageRequest, async (fields) => {
        const verdict = await handler.verify(
          { ...fields, headers: new Headers(fields.headers) },
          config,
          NOW,
          { seen: async () => false },
        );
        expect(verdict.ok).toBe(false);
      }),
      { numRuns: 150 },
    );
  });

  it('parse never throws and only yields well-formed events', () => {
    fc.assert(
      fc.property(
        garbageBody,
        fc.constantFrom('application/json', 'application/x-www-form-urlencoded', ''),
        (body, type) => {
          const events = handler.parse(body, new Headers(type ? { 'content-type': type } : {}));
          expect(Array.isArray(events)).toBe(true);
          for (const parsed of events) {
            expect(STATUSES).toContain(parsed.status);
            for (const field of ['deliveryId', 'providerMessageId', 'reason', 'occurredAt'] as const) {
              if (field in parsed) expect(typeof parsed[field]).toBe('string');
            }
            if (parsed.occurredAt) expect(new Date(parsed.occurredAt).toISOString()).toBe(parsed.occurredAt);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
