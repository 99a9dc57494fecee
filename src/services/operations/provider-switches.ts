import { OperationsRepo } from '../../storage/operations-repo';

/** How long an isolate trusts the switches it read: a switch reaches every isolate within this. */
const TTL_MS = 10_000;

const cache = new WeakMap<D1Database, { value: Map<string, boolean>; expires: number }>();

/** Provider name → enabled, from D1, cached briefly per isolate. Absent means enabled. */
export async function providerSwitches(db: D1Database, nowMs: number): Promise<Map<string, boolean>> {
  const hit = cache.get(db);
  if (hit && hit.expires > nowMs) return hit.value;
  const value = await new OperationsRepo(db).providerSwitches();
  cache.set(db, { value, expires: nowMs + TTL_MS });
  return value;
}

export async function setProviderEnabled(
  db: D1Database,
  name: string,
  enabled: boolean,
  nowMs: number,
): Promise<void> {
  await new OperationsRepo(db).setProviderEnabled(name, enabled, nowMs);
  cache.delete(db);
}
