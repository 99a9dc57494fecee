import type { Shard, ShardRouter } from './shard-router';

/** One repository per shard database, and the routing helpers every sharded facade needs. */
export class PerShard<R> {
  protected readonly repos = new Map<Shard, R>();

  constructor(
    readonly router: ShardRouter,
    make: (db: D1Database, shard: Shard) => R,
  ) {
    for (const shard of router.databases) this.repos.set(shard, make(shard.db, shard));
  }

  on(shard: Shard): R {
    return this.repos.get(shard) as R;
  }

  protected forId(id: string): R {
    return this.on(this.router.forId(id));
  }

  protected get all(): R[] {
    return this.router.shards.map((shard) => this.on(shard));
  }

  /** The repository of the database a user's rows live in. */
  protected ofUser(userId: string): R {
    return this.on(this.router.forUser(userId));
  }

  /** `make` for each database holding some of these users, with those users (each once). */
  protected byUser<T>(userIds: readonly string[], make: (repo: R, userIds: string[]) => T): T[] {
    const groups = new Map<Shard, string[]>();
    for (const userId of new Set(userIds)) {
      const shard = this.router.forUser(userId);
      groups.set(shard, [...(groups.get(shard) ?? []), userId]);
    }
    return [...groups].map(([shard, group]) => make(this.on(shard), group));
  }

  /** A per-user read run in each database holding some of these users, its maps merged. */
  protected async mergedByUser<V>(
    userIds: readonly string[],
    read: (repo: R, userIds: string[]) => Promise<Map<string, V>>,
  ): Promise<Map<string, V>> {
    const maps = await Promise.all(this.byUser(userIds, read));
    return new Map(maps.flatMap((m) => [...m]));
  }

  /** `make` for each database holding some of `ids`, with those ids. */
  protected grouped<T>(ids: readonly string[], make: (repo: R, ids: string[]) => T): T[] {
    return [...this.router.groupIds(ids)].map(([shard, group]) => make(this.on(shard), group));
  }
}
