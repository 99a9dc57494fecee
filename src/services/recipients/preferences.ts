import { invalidField } from '../../domain/errors';
import { NO_PREFERENCES, type Preferences } from '../../domain/preferences';
import type { Services } from '../container';

export interface PreferencesPatch {
  channels?: Preferences['channels'];
  types?: Preferences['types'];
  quietHours?: Preferences['quietHours'];
}

export async function getPreferences(services: Services, userId: string): Promise<Preferences> {
  return (await services.preferences.get(userId)) ?? NO_PREFERENCES;
}

/** A required type (its type.json says so) cannot be turned off: refuse the request, name the field. */
async function refuseRequiredOptOuts(
  services: Services,
  types: Preferences['types'] | undefined,
): Promise<void> {
  for (const [type, choices] of Object.entries(types ?? {})) {
    if (!Object.values(choices).includes(false)) continue;
    const config = await services.templates.typeConfig(type);
    if (config.preferences?.required) {
      throw invalidField(`types.${type}`, `${type} is required and cannot be turned off`);
    }
  }
}

/** PUT: the body replaces every setting. */
export async function replacePreferences(
  services: Services,
  userId: string,
  input: PreferencesPatch,
): Promise<Preferences> {
  await refuseRequiredOptOuts(services, input.types);
  const preferences: Preferences = {
    channels: input.channels ?? {},
    types: input.types ?? {},
    quietHours: input.quietHours ?? null,
  };
  await services.preferences.put(userId, preferences, services.now());
  return preferences;
}

/** PATCH: channels and types merge key by key; `quietHours` replaces (null clears). */
export async function patchPreferences(
  services: Services,
  userId: string,
  patch: PreferencesPatch,
): Promise<Preferences> {
  await refuseRequiredOptOuts(services, patch.types);
  const current = await getPreferences(services, userId);
  const types = { ...current.types };
  for (const [type, choices] of Object.entries(patch.types ?? {}))
    types[type] = { ...types[type], ...choices };
  const preferences: Preferences = {
    channels: { ...current.channels, ...patch.channels },
    types,
    quietHours: 'quietHours' in patch ? (patch.quietHours ?? null) : current.quietHours,
  };
  await services.preferences.put(userId, preferences, services.now());
  return preferences;
}
