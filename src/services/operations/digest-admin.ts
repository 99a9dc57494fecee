import type { Services } from '../container';

/** An open digest as an operator sees it. */
export interface DigestView {
  type: string;
  channel: string;
  key: string;
  count: number;
  deliveryIds: string[];
  firstAt: string | null;
  closesAt: string;
}

function recipient(services: Services, userId: string) {
  return services.env.RECIPIENT.get(services.env.RECIPIENT.idFromName(`user:${userId}`));
}

/** A user's open digests (collecting, not yet sent). */
export async function openDigestsOf(services: Services, userId: string): Promise<DigestView[]> {
  return (await recipient(services, userId).openDigests()).map((digest) => {
    const [type = '', channel = '', key = ''] = JSON.parse(digest.key) as string[];
    const first = digest.items[0];
    return {
      type,
      channel,
      key,
      count: digest.items.length,
      deliveryIds: digest.items.map((i) => i.deliveryId),
      firstAt: first ? new Date(first.atMs).toISOString() : null,
      closesAt: new Date(digest.closesAtMs).toISOString(),
    };
  });
}

/** Sends a user's open digests of a type now (only the one with `key` when given); how many. */
export async function flushDigests(
  services: Services,
  userId: string,
  type: string,
  key?: string,
): Promise<number> {
  const keys = (await recipient(services, userId).openDigests())
    .map((d) => d.key)
    .filter((k) => {
      const [t, , rendered] = JSON.parse(k) as string[];
      return t === type && (key === undefined || rendered === key);
    });
  if (keys.length === 0) return 0;
  return (await recipient(services, userId).flush(keys)).length;
}

/** The open digests holding any of these deliveries (those `digested` and not yet sent), by delivery id. */
export async function openDigestsHolding(
  services: Services,
  deliveries: readonly { id: string; userId: string | null; status: string }[],
): Promise<Map<string, DigestView>> {
  const users = [
    ...new Set(deliveries.filter((d) => d.status === 'digested' && d.userId).map((d) => d.userId as string)),
  ];
  const found = new Map<string, DigestView>();
  for (const userId of users) {
    for (const digest of await openDigestsOf(services, userId)) {
      for (const id of digest.deliveryIds) found.set(id, digest);
    }
  }
  return found;
}
