import type { Services } from '../container';

/** How long an isolate trusts the switches it read: a switch reaches every isolate within this. */
const TTL_MS = 10_000;

const cache = new WeakMap<D1Database, { value: Map<string, boolean>; expires: number }>();

/** Provider name → enabled, from D1, cached briefly per isolate. Absent means enabled. */
export async function providerSwitches(services: Services, nowMs: number): Promise<Map<string, boolean>> {
  const hit = cache.get(services.env.DB);
  if (hit && hit.expires > nowMs) return hit.value;
  const value = await services.operations.providerSwitches();
  cache.set(services.env.DB, { value, expires: nowMs + TTL_MS });
  return value;
}

export async function setProviderEnabled(
  services: Services,
  name: string,
  enabled: boolean,
  nowMs: number,
): Promise<void> {
  await services.operations.setProviderEnabled(name, enabled, nowMs);
  cache.delete(services.env.DB);
}
