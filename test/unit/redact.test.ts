import { describe, expect, it } from 'vitest';
import { redact } from '../../src/lib/redact';

describe('redact', () => {
  it.each([
    ['mailbox ada@example.com is full', 'mailbox [email] is full'],
    ['number +1 415 555 0123 is invalid', 'number [phone] is invalid'],
    ['to 14155550123 failed', 'to [phone] failed'],
    ['POST https://hooks.slack.com/services/T0/B0/secret failed', 'POST https://hooks.slack.com/… failed'],
    ['bad signature whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La', 'bad signature [secret]'],
    ['token APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8 gone', 'token [token] gone'],
  ])('%s', (input, output) => {
    expect(redact(input)).toBe(output);
  });

  it('keeps what operators need: Herald ids, dates, codes, delays', () => {
    const text =
      'duplicate of dlv_01m8gdkc950ckg8y5p554zdxat; quiet hours until 2026-01-15T06:00:00.000Z; retry in 120s: 21610';
    expect(redact(text)).toBe(text);
  });
});
