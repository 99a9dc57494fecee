import type { Channel, Priority } from './channels';
import { quietHoursEnd } from './quiet-hours';
import type { TypeConfig } from './type-config';

/** A user's notification settings (the seed's notification_settings row). */
export interface Preferences {
  /** `false` turns a channel off for every type (unless the type is required). */
  channels: Partial<Record<Channel, boolean>>;
  /** Per type: a channel or `all` set to `true` (opt in) or `false` (opt out). */
  types: Record<string, Partial<Record<Channel | 'all', boolean>>>;
  /** Quiet hours in the contact's time zone; null for none. */
  quietHours: { start: string; end: string } | null;
}

export const NO_PREFERENCES: Preferences = { channels: {}, types: {}, quietHours: null };

export type PreferenceVerdict =
  | { verdict: 'send' }
  | { verdict: 'suppress'; reason: string }
  | { verdict: 'defer'; untilMs: number; reason: string };

/**
 * Decides, right before sending, whether the user wants this delivery now. A required type
 * (e.g. `security_alert`) ignores opt-outs; `critical` and in-app items ignore quiet hours. An
 * opt-out type is sent only to users who opted in.
 */
export function preferenceVerdict(
  preferences: Preferences,
  delivery: { type: string; channel: Channel; priority: Priority },
  config: TypeConfig,
  timeZone: string | null,
  nowMs: number,
): PreferenceVerdict {
  const required = config.preferences?.required === true;
  if (!required) {
    const forType = preferences.types[delivery.type] ?? {};
    const explicit = forType[delivery.channel] ?? forType.all;
    if (explicit === false)
      return { verdict: 'suppress', reason: `user opted out of ${delivery.type} on ${delivery.channel}` };
    if (preferences.channels[delivery.channel] === false && explicit !== true) {
      return { verdict: 'suppress', reason: `user turned ${delivery.channel} off` };
    }
    if (config.preferences?.default === 'opt-out' && explicit !== true) {
      return { verdict: 'suppress', reason: `${delivery.type} is sent only to users who opted in` };
    }
  }
  // An in-app item is silent: it waits in the inbox, so quiet hours do not hold it back.
  if (delivery.priority !== 'critical' && delivery.channel !== 'inapp' && preferences.quietHours) {
    const until = quietHoursEnd(nowMs, preferences.quietHours, timeZone ?? 'UTC');
    if (until !== null) {
      return {
        verdict: 'defer',
        untilMs: until,
        reason: `quiet hours ${preferences.quietHours.start}–${preferences.quietHours.end} (${timeZone ?? 'UTC'}) until ${new Date(until).toISOString()}`,
      };
    }
  }
  return { verdict: 'send' };
}
