import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DEDUPE_WINDOW_SECONDS,
  DEFAULT_RATE_LIMITS,
  type DecisionRequest,
  dedupeExpiresAt,
  dedupeVerdict,
  isValidRateLimit,
  LEASE_MS,
  type RateLimit,
  rateScopeOf,
  rateVerdict,
  type SendRecord,
  sendRetainedUntil,
  windowFreesAt,
} from '../../src/domain/recipient-rules';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = 1_700_000_000_000;

describe('defaults', () => {
  it('caps each channel as the product promises', () => {
    expect(DEFAULT_RATE_LIMITS).toEqual({
      sms: { limit: 5, windowSeconds: 3600 },
      push: { limit: 10, windowSeconds: 3600 },
      email: { limit: 20, windowSeconds: 86_400 },
      chat: { limit: 30, windowSeconds: 3600 },
      webhook: null,
      inapp: null,
    });
    expect(LEASE_MS).toBe(2 * MINUTE);
    expect(DEFAULT_DEDUPE_WINDOW_SECONDS).toBe(86_400);
  });
});

describe('windowFreesAt', () => {
  const fivePerHour: RateLimit = { limit: 5, windowSeconds: 3600 };
  const cases: { name: string; sends: number[]; now: number; expected: number | null }[] = [
    { name: 'no sends', sends: [], now: T0, expected: null },
    {
      name: 'under the cap',
      sends: [0, 10, 20, 30].map((m) => T0 + m * MINUTE),
      now: T0 + 50 * MINUTE,
      expected: null,
    },
    {
      name: 'at the cap: frees when the oldest leaves',
      sends: [40, 0, 30, 10, 20].map((m) => T0 + m * MINUTE),
      now: T0 + 50 * MINUTE,
      expected: T0 + HOUR,
    },
    {
      name: 'over the cap (critical sends counted): the second oldest must leave too',
      sends: [0, 5, 10, 15, 20, 25].map((m) => T0 + m * MINUTE),
      now: T0 + 30 * MINUTE,
      expected: T0 + 5 * MINUTE + HOUR,
    },
    {
      name: 'a send exactly one window ago no longer counts',
      sends: [0, 10, 20, 30, 40].map((m) => T0 + m * MINUTE),
      now: T0 + HOUR,
      expected: null,
    },
    {
      name: 'one millisecond earlier it still does',
      sends: [0, 10, 20, 30, 40].map((m) => T0 + m * MINUTE),
      now: T0 + HOUR - 1,
      expected: T0 + HOUR,
    },
    {
      name: 'a send stamped in the future (faster clock) counts',
      sends: [0, 10, 20, 30, 70].map((m) => T0 + m * MINUTE),
      now: T0 + 50 * MINUTE,
      expected: T0 + HOUR,
    },
  ];
  it.each(cases)('$name', ({ sends, now, expected }) => {
    expect(windowFreesAt(sends, fivePerHour, now)).toBe(expected);
  });

  /** Independent oracle: walk the clock a millisecond at a time, counting by the definition. */
  function firstFreeInstant(sends: number[], limit: RateLimit, now: number): number {
    const windowMs = limit.windowSeconds * 1000;
    const countAt = (t: number) => sends.filter((s) => t < s + windowMs).length;
    let t = now;
    while (countAt(t) >= limit.limit) t++;
    return t;
  }

  it('returns the earliest instant the window has room, by brute force', () => {
    fc.assert(
      fc.property(
        // On a 250 ms grid, so "now" often lands exactly where a send leaves the window.
        fc.array(fc.integer({ min: 0, max: 24 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 24 }),
        (steps, limit, windowSeconds, nowStep) => {
          const sends = steps.map((step) => T0 + step * 250);
          const now = T0 + nowStep * 250;
          const rate = { limit, windowSeconds };
          const oracle = firstFreeInstant(sends, rate, now);
          expect(windowFreesAt(sends, rate, now)).toBe(oracle === now ? null : oracle);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('rateScopeOf', () => {
  it.each([
    ['channel default', 'sms', undefined, { limit: DEFAULT_RATE_LIMITS.sms, perType: false }],
    [
      'type override',
      'sms',
      { limit: 2, windowSeconds: 60 },
      { limit: { limit: 2, windowSeconds: 60 }, perType: true },
    ],
    ['explicit no cap', 'sms', null, null],
    ['uncapped channel', 'webhook', undefined, null],
    [
      'override on an uncapped channel',
      'webhook',
      { limit: 1, windowSeconds: 1 },
      { limit: { limit: 1, windowSeconds: 1 }, perType: true },
    ],
  ] as const)('%s', (_name, channel, override, expected) => {
    expect(rateScopeOf(channel, override)).toEqual(expected);
  });

  it.each([
    { limit: 0, windowSeconds: 60 },
    { limit: 1.5, windowSeconds: 60 },
    { limit: -1, windowSeconds: 60 },
    { limit: 1, windowSeconds: 0 },
    { limit: 1, windowSeconds: Number.NaN },
    { limit: 1, windowSeconds: Number.POSITIVE_INFINITY },
  ])('rejects the malformed cap %o', (override) => {
    expect(isValidRateLimit(override)).toBe(false);
    expect(() => rateScopeOf('sms', override)).toThrow(RangeError);
  });
});

describe('rateVerdict', () => {
  const smsAt = (minute: number, type = 'order.shipped', id = `ntf_${type}_${minute}`): SendRecord => ({
    notificationId: id,
    channel: 'sms',
    type,
    sentAtMs: T0 + minute * MINUTE,
  });
  const fullHour = [0, 10, 20, 30, 40].map((m) => smsAt(m));
  const request = (over: Partial<DecisionRequest> = {}): DecisionRequest => ({
    deliveryId: 'dlv_new',
    notificationId: 'ntf_new',
    channel: 'sms',
    type: 'order.shipped',
    priority: 'normal',
    nowMs: T0 + 50 * MINUTE,
    ...over,
  });

  it.each([
    ['normal over the cap defers to the exact instant', 'normal', { verdict: 'defer', untilMs: T0 + HOUR }],
    ['high over the cap defers too', 'high', { verdict: 'defer', untilMs: T0 + HOUR }],
    ['low over the cap is dropped', 'low', { verdict: 'drop' }],
    ['critical is never held back', 'critical', { verdict: 'send' }],
  ] as const)('%s', (_name, priority, expected) => {
    expect(rateVerdict(request({ priority }), fullHour)).toEqual(expected);
  });

  it('sends under the cap', () => {
    expect(rateVerdict(request(), fullHour.slice(1))).toEqual({ verdict: 'send' });
  });

  it('lets every delivery of a notification through on its one slot (another device, a redelivery)', () => {
    expect(rateVerdict(request({ notificationId: 'ntf_order.shipped_40' }), fullHour)).toEqual({
      verdict: 'send',
    });
    // Even when critical sends pushed the window past the cap since.
    const overfull = [...fullHour, smsAt(45, 'auth.otp')];
    expect(rateVerdict(request({ notificationId: 'ntf_order.shipped_0' }), overfull)).toEqual({
      verdict: 'send',
    });
  });

  it('counts a notification once per channel: its slot on push leaves SMS to the cap', () => {
    const pushOfNew = { ...smsAt(45), notificationId: 'ntf_new', channel: 'push' as const };
    expect(rateVerdict(request(), [...fullHour, pushOfNew])).toEqual({
      verdict: 'defer',
      untilMs: T0 + HOUR,
    });
  });

  it('counts only the request’s channel', () => {
    const push = fullHour.map((send) => ({ ...send, channel: 'push' as const }));
    expect(rateVerdict(request(), push)).toEqual({ verdict: 'send' });
  });

  it('counts every type against the channel default', () => {
    const mixed = [0, 10, 20, 30, 40].map((m, i) => smsAt(m, `type.${i}`));
    expect(rateVerdict(request(), mixed)).toEqual({ verdict: 'defer', untilMs: T0 + HOUR });
  });

  it('counts only the request’s type under a type override, with the override’s numbers', () => {
    const rateLimit = { limit: 2, windowSeconds: 1800 };
    const sends = [smsAt(0, 'otp'), smsAt(25, 'otp'), smsAt(30, 'marketing'), smsAt(35, 'marketing')];
    const otp = request({ type: 'otp', rateLimit, nowMs: T0 + 26 * MINUTE });
    expect(rateVerdict(otp, sends)).toEqual({ verdict: 'defer', untilMs: T0 + 30 * MINUTE });
    expect(rateVerdict({ ...otp, nowMs: T0 + 30 * MINUTE }, sends)).toEqual({ verdict: 'send' });
    expect(rateVerdict({ ...otp, type: 'welcome' }, sends)).toEqual({ verdict: 'send' });
  });

  it('lets a type with no cap through a full channel', () => {
    expect(rateVerdict(request({ rateLimit: null }), fullHour)).toEqual({ verdict: 'send' });
  });

  it('never caps webhooks by default', () => {
    const hooks = Array.from({ length: 100 }, (_, i) => ({ ...smsAt(i / 10), channel: 'webhook' as const }));
    expect(rateVerdict(request({ channel: 'webhook' }), hooks)).toEqual({ verdict: 'send' });
  });
});

describe('dedupeVerdict', () => {
  const claim = { notificationId: 'ntf_a', deliveryIds: ['dlv_a1', 'dlv_a2'], expiresAtMs: T0 + DAY };
  const asked = (notificationId: string, deliveryId = 'dlv_x', nowMs = T0) => ({
    notificationId,
    deliveryId,
    nowMs,
  });

  it.each([
    ['no claim', undefined, asked('ntf_b'), null],
    ['a delivery of the claiming notification (another device)', claim, asked('ntf_a', 'dlv_a3'), null],
    ['a delivery that went under the claim', claim, asked('ntf_legacy', 'dlv_a2'), null],
    [
      'a twin from another notification, naming the first delivery',
      claim,
      asked('ntf_b'),
      { verdict: 'duplicate', firstDeliveryId: 'dlv_a1' },
    ],
    ['a twin once the claim expired', claim, asked('ntf_b', 'dlv_x', T0 + DAY), null],
  ] as const)('%s', (_name, held, request, expected) => {
    expect(dedupeVerdict(request, held)).toEqual(expected);
  });
});

describe('retention and dedupe expiry', () => {
  it.each([
    ['sms default', 'sms', undefined, T0 + HOUR],
    ['email default', 'email', undefined, T0 + DAY],
    ['longer override wins', 'sms', { limit: 1, windowSeconds: 86_400 }, T0 + DAY],
    ['channel default outlives a shorter override', 'sms', { limit: 1, windowSeconds: 60 }, T0 + HOUR],
    ['uncapped type still counts for its channel', 'sms', null, T0 + HOUR],
    ['plain webhook is not stored', 'webhook', undefined, null],
    ['webhook under an override', 'webhook', { limit: 1, windowSeconds: 60 }, T0 + MINUTE],
  ] as const)('%s', (_name, channel, override, expected) => {
    expect(sendRetainedUntil(channel, override, T0)).toBe(expected);
  });

  it('expires dedupe claims after 24 h unless told otherwise', () => {
    expect(dedupeExpiresAt(T0)).toBe(T0 + DAY);
    expect(dedupeExpiresAt(T0, 90)).toBe(T0 + 90_000);
    expect(() => dedupeExpiresAt(T0, 0)).toThrow(RangeError);
    expect(() => dedupeExpiresAt(T0, Number.NaN)).toThrow(RangeError);
  });
});
