import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidTimeZone, nextLocalTime, parseClock, quietHoursEnd } from '../../src/domain/quiet-hours';

// Expected instants are literal UTC values, checked by hand against `zdump -v -c 2026,2027 <zone>`
// (glibc tzdata, independent of the ICU data the code uses). The 2026 transitions relied on:
//   America/New_York     2026-03-08T07:00Z 01:59:59 EST -> 03:00 EDT; 2026-11-01T06:00Z 01:59:59 EDT -> 01:00 EST
//   Europe/Paris         2026-03-29T01:00Z 01:59:59 CET -> 03:00 CEST; 2026-10-25T01:00Z 02:59:59 CEST -> 02:00 CET
//   Australia/Lord_Howe  2026-10-03T15:30Z 01:59:59 +1030 -> 02:30 +11; 2026-04-04T15:00Z 01:59:59 +11 -> 01:30 +1030
//   Pacific/Chatham      2026-09-26T14:00Z 02:44:59 +1245 -> 03:45 +1345; 2026-04-04T14:00Z 03:44:59 +1345 -> 02:45 +1245
const at = (iso: string) => Date.parse(iso);

type Case = [name: string, now: string, start: string, end: string, zone: string, expected: string | null];

function runCases(cases: Case[]) {
  it.each(cases)('%s', (_name, now, start, end, zone, expected) => {
    expect(quietHoursEnd(at(now), { start, end }, zone)).toBe(expected === null ? null : at(expected));
  });
}

describe('quietHoursEnd: windows across midnight', () => {
  runCases([
    [
      'NY 22:00 EST starts quiet hours',
      '2026-01-15T03:00:00Z',
      '22:00',
      '07:00',
      'America/New_York',
      '2026-01-15T12:00:00Z',
    ],
    [
      'NY just after midnight',
      '2026-01-15T05:30:00Z',
      '22:00',
      '07:00',
      'America/New_York',
      '2026-01-15T12:00:00Z',
    ],
    [
      'NY last ms before 07:00',
      '2026-01-15T11:59:59.999Z',
      '22:00',
      '07:00',
      'America/New_York',
      '2026-01-15T12:00:00Z',
    ],
    ['NY exactly 07:00 is not quiet', '2026-01-15T12:00:00Z', '22:00', '07:00', 'America/New_York', null],
    ['NY 21:59:59.999 is not quiet', '2026-01-15T02:59:59.999Z', '22:00', '07:00', 'America/New_York', null],
    ['NY afternoon is not quiet', '2026-01-15T18:00:00Z', '22:00', '07:00', 'America/New_York', null],
    ['NY summer (EDT)', '2026-07-01T03:00:00Z', '23:00', '06:30', 'America/New_York', '2026-07-01T10:30:00Z'],
    ['UTC', '2026-05-01T23:30:00Z', '23:00', '01:00', 'UTC', '2026-05-02T01:00:00Z'],
    ['end at midnight', '2026-05-01T23:30:00Z', '20:00', '00:00', 'UTC', '2026-05-02T00:00:00Z'],
    ['start at midnight', '2026-05-01T00:00:00Z', '00:00', '08:00', 'UTC', '2026-05-01T08:00:00Z'],
  ]);
});

describe('quietHoursEnd: same-day windows', () => {
  runCases([
    ['Paris 13:30 CEST', '2026-07-01T11:30:00Z', '13:00', '14:00', 'Europe/Paris', '2026-07-01T12:00:00Z'],
    ['Paris 13:00 exactly', '2026-07-01T11:00:00Z', '13:00', '14:00', 'Europe/Paris', '2026-07-01T12:00:00Z'],
    ['Paris 12:59 is before', '2026-07-01T10:59:00Z', '13:00', '14:00', 'Europe/Paris', null],
    ['Paris 14:00 is after', '2026-07-01T12:00:00Z', '13:00', '14:00', 'Europe/Paris', null],
    ['Paris 23:00 is after', '2026-07-01T21:00:00Z', '13:00', '14:00', 'Europe/Paris', null],
    ['Paris winter (CET)', '2026-01-10T12:15:00Z', '13:00', '14:00', 'Europe/Paris', '2026-01-10T13:00:00Z'],
  ]);
});

describe('quietHoursEnd: start == end means no quiet hours', () => {
  runCases([
    ['22:00-22:00 at 22:00', '2026-01-15T03:00:00Z', '22:00', '22:00', 'America/New_York', null],
    ['22:00-22:00 at 03:00', '2026-01-15T08:00:00Z', '22:00', '22:00', 'America/New_York', null],
    ['00:00-00:00', '2026-01-15T00:00:00Z', '00:00', '00:00', 'UTC', null],
  ]);
});

describe('quietHoursEnd: fractional and unusual offsets', () => {
  runCases([
    [
      'Kolkata +05:30 22:30',
      '2026-05-10T17:00:00Z',
      '22:00',
      '07:00',
      'Asia/Kolkata',
      '2026-05-11T01:30:00Z',
    ],
    ['Kolkata 21:59 is not quiet', '2026-05-10T16:29:00Z', '22:00', '07:00', 'Asia/Kolkata', null],
    [
      'Lord Howe summer +11',
      '2026-01-10T12:00:00Z',
      '22:00',
      '07:00',
      'Australia/Lord_Howe',
      '2026-01-10T20:00:00Z',
    ],
    [
      'Lord Howe winter +10:30',
      '2026-07-10T12:00:00Z',
      '22:00',
      '07:00',
      'Australia/Lord_Howe',
      '2026-07-10T20:30:00Z',
    ],
    [
      'Chatham winter +12:45',
      '2026-07-10T10:00:00Z',
      '22:00',
      '07:00',
      'Pacific/Chatham',
      '2026-07-10T18:15:00Z',
    ],
    [
      'Chatham summer +13:45',
      '2026-01-10T09:00:00Z',
      '22:00',
      '07:00',
      'Pacific/Chatham',
      '2026-01-10T17:15:00Z',
    ],
  ]);
});

describe('quietHoursEnd: spring forward', () => {
  runCases([
    // 02:30 does not exist on 2026-03-08 in New York: the first valid instant after the gap is 03:00 EDT.
    [
      'NY end 02:30 in the gap',
      '2026-03-08T06:30:00Z',
      '01:00',
      '02:30',
      'America/New_York',
      '2026-03-08T07:00:00Z',
    ],
    [
      'NY end 02:00 (gap start)',
      '2026-03-08T06:30:00Z',
      '01:00',
      '02:00',
      'America/New_York',
      '2026-03-08T07:00:00Z',
    ],
    [
      'NY end 03:00 (gap end)',
      '2026-03-08T06:30:00Z',
      '01:00',
      '03:00',
      'America/New_York',
      '2026-03-08T07:00:00Z',
    ],
    [
      'NY end 03:30 after the gap',
      '2026-03-08T06:30:00Z',
      '01:00',
      '03:30',
      'America/New_York',
      '2026-03-08T07:30:00Z',
    ],
    [
      'NY overnight, 07:00 EDT',
      '2026-03-08T03:00:00Z',
      '22:00',
      '07:00',
      'America/New_York',
      '2026-03-08T11:00:00Z',
    ],
    // The whole non-quiet part (02:30-02:45) is skipped, so quiet hours run on to the next day.
    [
      'NY gap swallows the awake part',
      '2026-03-08T06:30:00Z',
      '02:45',
      '02:30',
      'America/New_York',
      '2026-03-09T06:30:00Z',
    ],
    [
      'Paris overnight, 07:00 CEST',
      '2026-03-28T21:00:00Z',
      '22:00',
      '07:00',
      'Europe/Paris',
      '2026-03-29T05:00:00Z',
    ],
    [
      'Paris overnight, from 01:30 CET',
      '2026-03-29T00:30:00Z',
      '22:00',
      '07:00',
      'Europe/Paris',
      '2026-03-29T05:00:00Z',
    ],
    [
      'Paris overnight, from 03:00 CEST',
      '2026-03-29T01:00:00Z',
      '22:00',
      '07:00',
      'Europe/Paris',
      '2026-03-29T05:00:00Z',
    ],
    [
      'Paris end 02:30 in the gap',
      '2026-03-29T00:30:00Z',
      '01:00',
      '02:30',
      'Europe/Paris',
      '2026-03-29T01:00:00Z',
    ],
    // Half-hour DST: 02:00-02:30 is skipped on Lord Howe on 2026-10-04.
    [
      'Lord Howe end 02:15 in the gap',
      '2026-10-03T14:45:00Z',
      '01:00',
      '02:15',
      'Australia/Lord_Howe',
      '2026-10-03T15:30:00Z',
    ],
    [
      'Lord Howe overnight',
      '2026-10-03T11:30:00Z',
      '22:00',
      '07:00',
      'Australia/Lord_Howe',
      '2026-10-03T20:00:00Z',
    ],
    // Chatham skips 02:45-03:45 on 2026-09-27.
    [
      'Chatham end 03:00 in the gap',
      '2026-09-26T12:00:00Z',
      '23:00',
      '03:00',
      'Pacific/Chatham',
      '2026-09-26T14:00:00Z',
    ],
  ]);
});

describe('quietHoursEnd: fall back', () => {
  runCases([
    [
      'NY overnight, 07:00 EST',
      '2026-11-01T02:00:00Z',
      '22:00',
      '07:00',
      'America/New_York',
      '2026-11-01T12:00:00Z',
    ],
    // 01:30 happens twice on 2026-11-01 in New York: the first occurrence (EDT) wins.
    [
      'NY end 01:30 first occurrence',
      '2026-11-01T04:30:00Z',
      '00:00',
      '01:30',
      'America/New_York',
      '2026-11-01T05:30:00Z',
    ],
    ['NY 01:45 EDT is not quiet', '2026-11-01T05:45:00Z', '00:00', '01:30', 'America/New_York', null],
    // Back in the window during the repeated hour: the next 01:30 is the EST one.
    [
      'NY 01:10 EST, second pass',
      '2026-11-01T06:10:00Z',
      '00:00',
      '01:30',
      'America/New_York',
      '2026-11-01T06:30:00Z',
    ],
    [
      'Paris overnight, 07:00 CET',
      '2026-10-24T20:00:00Z',
      '22:00',
      '07:00',
      'Europe/Paris',
      '2026-10-25T06:00:00Z',
    ],
    [
      'Paris overnight, in repeated hour',
      '2026-10-25T01:30:00Z',
      '22:00',
      '07:00',
      'Europe/Paris',
      '2026-10-25T06:00:00Z',
    ],
    [
      'Paris end 02:30 first occurrence',
      '2026-10-24T23:30:00Z',
      '01:00',
      '02:30',
      'Europe/Paris',
      '2026-10-25T00:30:00Z',
    ],
    [
      'Paris 02:10 CET, second pass',
      '2026-10-25T01:10:00Z',
      '01:00',
      '02:30',
      'Europe/Paris',
      '2026-10-25T01:30:00Z',
    ],
    // Lord Howe repeats 01:30-02:00 on 2026-04-05.
    [
      'Lord Howe end 01:45 first occurrence',
      '2026-04-04T14:00:00Z',
      '00:00',
      '01:45',
      'Australia/Lord_Howe',
      '2026-04-04T14:45:00Z',
    ],
  ]);
});

describe('quietHoursEnd input validation', () => {
  it.each([
    ['7:00', '22:00'],
    ['22:00', '24:00'],
    ['22:60', '07:00'],
    ['', '07:00'],
    ['22:00', ' 07:00'],
  ])('rejects clocks %s-%s', (start, end) => {
    expect(() => quietHoursEnd(0, { start, end }, 'UTC')).toThrow(RangeError);
  });

  it('rejects an unknown time zone', () => {
    expect(() => quietHoursEnd(0, { start: '22:00', end: '07:00' }, 'Mars/Olympus_Mons')).toThrow(RangeError);
  });

  it('rejects a non-finite now', () => {
    expect(() => quietHoursEnd(Number.NaN, { start: '22:00', end: '07:00' }, 'UTC')).toThrow(RangeError);
  });
});

describe('parseClock', () => {
  it.each([
    ['00:00', 0],
    ['07:00', 420],
    ['12:34', 754],
    ['23:59', 1439],
  ])('%s -> %d', (value, minutes) => {
    expect(parseClock(value)).toBe(minutes);
  });

  it.each([
    '24:00',
    '23:60',
    '7:00',
    '07:0',
    '0700',
    '07:00:00',
    ' 07:00',
    '07:00 ',
    '-1:00',
    'ab:cd',
    '',
    '１２:００',
  ])('rejects %j', (value) => {
    expect(parseClock(value)).toBeNull();
  });
});

/** Zones with whole, half, three-quarter and half-hour-DST offsets, on both sides of UTC. */
const TIME_ZONES = [
  'UTC',
  'America/New_York',
  'Europe/Paris',
  'Asia/Kolkata',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
] as const;

describe('isValidTimeZone', () => {
  it.each(TIME_ZONES)('accepts %s', (zone) => {
    expect(isValidTimeZone(zone)).toBe(true);
  });

  it.each(['', 'Mars/Olympus_Mons', 'America/Nowhere', 'not a zone'])('rejects %j', (zone) => {
    expect(isValidTimeZone(zone)).toBe(false);
  });
});

// --- property test --------------------------------------------------------------------------
// An independent reading of the wall clock, written separately from the module under test.

const PROPERTY_ZONES = [
  ...TIME_ZONES,
  'America/St_Johns',
  'America/Havana', // changes at midnight: some local dates have no 00:00
  'America/Santiago',
  'Antarctica/Troll', // two-hour DST
  'Asia/Kathmandu',
] as const;

// 2026 transitions from zdump, paired with their zone, so generated instants often sit next to one.
const TRANSITIONS: Array<[zone: (typeof PROPERTY_ZONES)[number], iso: string]> = [
  ['America/New_York', '2026-03-08T07:00:00Z'],
  ['America/New_York', '2026-11-01T06:00:00Z'],
  ['Europe/Paris', '2026-03-29T01:00:00Z'],
  ['Europe/Paris', '2026-10-25T01:00:00Z'],
  ['Australia/Lord_Howe', '2026-10-03T15:30:00Z'],
  ['Australia/Lord_Howe', '2026-04-04T15:00:00Z'],
  ['Pacific/Chatham', '2026-09-26T14:00:00Z'],
  ['Pacific/Chatham', '2026-04-04T14:00:00Z'],
  ['America/St_Johns', '2026-03-08T05:30:00Z'],
  ['America/St_Johns', '2026-11-01T04:30:00Z'],
  ['America/Havana', '2026-03-08T05:00:00Z'],
  ['America/Havana', '2026-11-01T05:00:00Z'],
  ['America/Santiago', '2026-04-05T03:00:00Z'],
  ['America/Santiago', '2026-09-06T04:00:00Z'],
  ['Antarctica/Troll', '2026-03-29T01:00:00Z'],
  ['Antarctica/Troll', '2026-10-25T01:00:00Z'],
];

const wallFormatters = new Map<string, Intl.DateTimeFormat>();
function wallClock(epochMs: number, zone: string): { hh: number; mm: number; ss: number } {
  let f = wallFormatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: zone,
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    wallFormatters.set(zone, f);
  }
  const [hh, mm, ss] = f.format(epochMs).split(':').map(Number);
  return { hh: (hh ?? 0) % 24, mm: mm ?? 0, ss: ss ?? 0 };
}

function minutes(clock: string): number {
  const [h, m] = clock.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

function isQuietAt(epochMs: number, zone: string, start: string, end: string): boolean {
  const { hh, mm, ss } = wallClock(epochMs, zone);
  const t = hh * 60 + mm + ss / 60;
  const s = minutes(start);
  const e = minutes(end);
  if (s === e) return false;
  return s < e ? t >= s && t < e : t >= s || t < e;
}

const anyClockArb = fc
  .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
  .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
// Wall times around the 2026 transitions (all between 23:00 and 04:00 local), so `end` often
// falls in a gap or an overlap.
const nearTransitionClockArb = fc
  .tuple(fc.constantFrom(23, 0, 1, 2, 3), fc.constantFrom(0, 15, 29, 30, 45, 59))
  .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
const clockArb = fc.oneof(anyClockArb, nearTransitionClockArb);

const scenarioArb = fc.oneof(
  fc.record({
    zone: fc.constantFrom(...PROPERTY_ZONES),
    now: fc.integer({ min: at('2024-01-01T00:00:00Z'), max: at('2030-12-31T00:00:00Z') }),
  }),
  fc
    .tuple(fc.constantFrom(...TRANSITIONS), fc.integer({ min: -30 * 3_600_000, max: 3 * 3_600_000 }))
    .map(([[zone, iso], delta]) => ({ zone, now: at(iso) + delta })),
);

describe('quietHoursEnd properties', () => {
  it('ends after now, outside quiet hours, at the wall time `end` (or a gap end), with no earlier `end`', () => {
    fc.assert(
      fc.property(scenarioArb, clockArb, clockArb, ({ zone, now }, start, end) => {
        const result = quietHoursEnd(now, { start, end }, zone);
        expect(result === null).toBe(!isQuietAt(now, zone, start, end));
        if (result === null) return;

        expect(result).toBeGreaterThan(now);
        expect(result - now).toBeLessThanOrEqual(49 * 3_600_000);
        expect(isQuietAt(result, zone, start, end)).toBe(false);
        expect(isQuietAt(result + 1, zone, start, end)).toBe(false);

        const wall = wallClock(result, zone);
        const landedOnEnd = wall.hh * 60 + wall.mm === minutes(end) && wall.ss === 0;
        if (!landedOnEnd) {
          // Only allowed at a spring-forward transition: one second earlier the wall clock reads
          // more than a second less.
          const before = wallClock(result - 1000, zone);
          const jump =
            wall.hh * 3600 + wall.mm * 60 + wall.ss - (before.hh * 3600 + before.mm * 60 + before.ss);
          expect(jump === 1 || jump === 1 - 86_400).toBe(false);
          expect(result % 1000).toBe(0);
        }

        // No instant strictly between now and the result shows `end` on the wall clock. Zone
        // offsets are whole minutes, so checking UTC minute boundaries covers every wall minute.
        for (let t = Math.floor(now / 60_000) * 60_000 + 60_000; t < result; t += 60_000) {
          const w = wallClock(t, zone);
          if (w.hh * 60 + w.mm === minutes(end)) {
            throw new Error(
              `earlier end at ${new Date(t).toISOString()} (result ${new Date(result).toISOString()})`,
            );
          }
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('nextLocalTime (digest schedules)', () => {
  it('the next 09:00 on a listed day, across a DST change, in the given zone', () => {
    // Friday 2026-03-27 12:00 UTC; Paris moves to summer time on Sunday 29 March.
    const friday = Date.UTC(2026, 2, 27, 12, 0);
    expect(new Date(nextLocalTime(friday, '09:00', ['mon'], 'Europe/Paris')).toISOString()).toBe(
      '2026-03-30T07:00:00.000Z',
    );
    // Every day: the next morning, still winter time.
    expect(new Date(nextLocalTime(friday, '09:00', undefined, 'Europe/Paris')).toISOString()).toBe(
      '2026-03-28T08:00:00.000Z',
    );
    // Later today when the time has not passed yet.
    expect(new Date(nextLocalTime(friday, '23:30', undefined, 'UTC')).toISOString()).toBe(
      '2026-03-27T23:30:00.000Z',
    );
    expect(() => nextLocalTime(friday, '24:00', undefined, 'UTC')).toThrow(RangeError);
  });
});
