/**
 * Quiet hours: a daily local wall-clock window (`22:00`–`07:00`) in an IANA time zone during which
 * a recipient does not want to be disturbed. Pure: time zone rules come from the runtime's ICU
 * data through `Intl.DateTimeFormat` (https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Intl/DateTimeFormat/formatToParts).
 *
 * Semantics, including daylight saving time (wording after Temporal's ambiguity guide,
 * https://tc39.es/proposal-temporal/docs/ambiguity.html):
 *
 * - The window is `[start, end)` on the local wall clock; `start > end` wraps midnight and
 *   `start == end` means no quiet hours at all.
 * - Whether `now` is quiet is decided by the local wall time at `now` alone. On a fall-back night
 *   the repeated hour is therefore quiet again whenever its wall time lies in the window.
 * - Quiet hours end at the first instant after `now` whose wall time is `end`:
 *   - `end` in a fall-back overlap (it occurs twice): the first occurrence after `now`.
 *   - `end` in a spring-forward gap (it never occurs that day): the first valid instant after the
 *     gap, i.e. the transition itself (ICU calls this WALLTIME_NEXT_VALID). With `22:00`–`02:30`
 *     in New York on 2026-03-08, quiet hours end at 03:00 EDT.
 *   - If that post-gap instant is itself inside the window (the whole non-quiet part of the day
 *     was skipped, e.g. `02:45`–`02:30`), quiet hours do not end that day; the next day's `end`
 *     is used.
 */

export interface QuietHours {
  /** Local wall-clock time `HH:MM` (00:00–23:59) at which quiet hours begin. */
  start: string;
  /** Local wall-clock time `HH:MM` at which quiet hours end (exclusive). */
  end: string;
}

const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$/;
const DAY_MS = 86_400_000;

/** Parses `HH:MM` (00:00–23:59, two digits each) into minutes after midnight; null when invalid. */
export function parseClock(value: string): number | null {
  const match = CLOCK.exec(value);
  if (!match) return null;
  return Number(match[1]) * 60 + Number(match[2]);
}

/** True when the runtime knows `timeZone` as an IANA zone name (or `UTC`). */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone.length === 0) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/**
 * When `nowMs` is inside quiet hours, the epoch milliseconds at which they end; null when it is
 * not (or when `start == end`). See the module comment for the DST rules.
 * @throws RangeError when a clock is not `HH:MM` or the time zone is unknown.
 */
export function quietHoursEnd(nowMs: number, quiet: QuietHours, timeZone: string): number | null {
  const start = parseClock(quiet.start);
  const end = parseClock(quiet.end);
  if (start === null || end === null) {
    throw new RangeError(`quiet hours must be HH:MM (00:00-23:59), got ${quiet.start}-${quiet.end}`);
  }
  if (!Number.isFinite(nowMs)) throw new RangeError('nowMs must be a finite number');
  const zone = zoneClock(timeZone);
  const local = zone.wallTime(nowMs);
  if (!inWindow(minutesOfDay(local), start, end)) return null;

  // The window is at most 24 h long, so the end lies on today's or tomorrow's local date; a
  // skipped day (the gap swallowed the whole non-quiet part) pushes it one further.
  for (let dayOffset = 0; dayOffset <= 3; dayOffset++) {
    const date = new Date(Date.UTC(local.year, local.month - 1, local.day + dayOffset));
    const wall = { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
    for (const instant of zone.instantsOf(wall, end)) {
      if (instant > nowMs && !inWindow(minutesOfDay(zone.wallTime(instant)), start, end)) return instant;
    }
  }
  // Unreachable for real zones: every zone reaches `end` within two local days.
  throw new Error(`no end of quiet hours found in ${timeZone}`);
}

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function minutesOfDay(wall: WallTime): number {
  return wall.hour * 60 + wall.minute + wall.second / 60;
}

function inWindow(minutes: number, start: number, end: number): boolean {
  if (start < end) return minutes >= start && minutes < end;
  if (start > end) return minutes >= start || minutes < end;
  return false;
}

/** Wall-clock arithmetic for one zone; formatters are cached because constructing one is slow. */
interface ZoneClock {
  wallTime(epochMs: number): WallTime;
  /** The instants whose local wall time is `minutes` on `date`: 2 in an overlap, the gap's end in a gap. */
  instantsOf(date: Pick<WallTime, 'year' | 'month' | 'day'>, minutes: number): number[];
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // Throws RangeError for an unknown zone, which is the documented contract.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

function zoneClock(timeZone: string): ZoneClock {
  const formatter = formatterFor(timeZone);

  const wallTime = (epochMs: number): WallTime => {
    const fields: Record<string, number> = {};
    for (const part of formatter.formatToParts(epochMs)) {
      if (part.type !== 'literal') fields[part.type] = Number(part.value);
    }
    return {
      year: fields.year ?? 0,
      month: fields.month ?? 1,
      day: fields.day ?? 1,
      // Some ICU versions print midnight as 24 even with h23; normalise defensively.
      hour: (fields.hour ?? 0) % 24,
      minute: fields.minute ?? 0,
      second: fields.second ?? 0,
    };
  };

  /** Offset from UTC in ms at an instant (whole seconds: Intl does not print milliseconds). */
  const offsetAt = (epochMs: number): number => {
    const w = wallTime(epochMs);
    const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
    return asUtc - Math.floor(epochMs / 1000) * 1000;
  };

  const instantsOf: ZoneClock['instantsOf'] = (date, minutes) => {
    const wallAsUtc = Date.UTC(date.year, date.month - 1, date.day, 0, minutes);
    // Any transition near this wall time lies between these two offsets (zones change their
    // offset at most once a day).
    const before = offsetAt(wallAsUtc - DAY_MS);
    const after = offsetAt(wallAsUtc + DAY_MS);
    const candidates = [...new Set([before, after])]
      .map((offset) => wallAsUtc - offset)
      .filter((instant) => offsetAt(instant) === wallAsUtc - instant)
      .sort((a, b) => a - b);
    if (candidates.length > 0 || before === after) return candidates;
    // A gap: the wall time was skipped. The transition lies between the instant the wall time
    // would have had under the new offset (still old offset there) and under the old one.
    return [firstInstantWithOffsetOtherThan(before, wallAsUtc - after, wallAsUtc - before, offsetAt)];
  };

  return { wallTime, instantsOf };
}

/**
 * Binary search for the first millisecond in (lo, hi] whose offset differs from `oldOffset`.
 * Transitions fall on whole seconds, so this lands exactly on one.
 */
function firstInstantWithOffsetOtherThan(
  oldOffset: number,
  lo: number,
  hi: number,
  offsetAt: (epochMs: number) => number,
): number {
  let low = Math.min(lo, hi);
  let high = Math.max(lo, hi);
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (offsetAt(mid) === oldOffset) low = mid;
    else high = mid;
  }
  return high;
}

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/**
 * The first instant after `nowMs` whose wall time in `timeZone` is `clock` (HH:MM) on one of
 * `days` (every day when absent): when a digest scheduled "mon at 09:00" goes out.
 */
export function nextLocalTime(
  nowMs: number,
  clock: string,
  days: readonly Weekday[] | undefined,
  timeZone: string,
): number {
  const minutes = parseClock(clock);
  if (minutes === null) throw new RangeError(`a time must be HH:MM (00:00-23:59), got ${clock}`);
  const zone = zoneClock(timeZone);
  const local = zone.wallTime(nowMs);
  for (let dayOffset = 0; dayOffset <= 8; dayOffset++) {
    const date = new Date(Date.UTC(local.year, local.month - 1, local.day + dayOffset));
    if (days && !days.includes(WEEKDAYS[date.getUTCDay()] as Weekday)) continue;
    const wall = { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
    const next = zone.instantsOf(wall, minutes).find((instant) => instant > nowMs);
    if (next !== undefined) return next;
  }
  throw new Error(`no ${clock} found in ${timeZone}`);
}
