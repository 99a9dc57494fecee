import type { Contact } from '../domain/contact';
import type { Preferences } from '../domain/preferences';
import type { FieldCipher } from '../lib/field-crypto';
import { type ContactFields, type ContactRow, ContactsRepo } from './contacts-repo';
import { PreferencesRepo } from './preferences-repo';
import type { Shard, ShardRouter } from './shard-router';
import { UserKeysRepo } from './user-keys-repo';

/** Groups user ids by the database each lives in. */
function byShard(router: ShardRouter, userIds: readonly string[]): Map<Shard, string[]> {
  const groups = new Map<Shard, string[]>();
  for (const userId of new Set(userIds)) {
    const shard = router.forUser(userId);
    groups.set(shard, [...(groups.get(shard) ?? []), userId]);
  }
  return groups;
}

/** Contacts, each in its user's database. */
export class ShardedContacts {
  private readonly repos = new Map<Shard, ContactsRepo>();

  constructor(
    readonly router: ShardRouter,
    cipher: () => Promise<FieldCipher>,
  ) {
    for (const shard of router.databases) this.repos.set(shard, new ContactsRepo(shard.db, cipher));
  }

  /** The repository of one database (key rotation goes one by one). */
  on(shard: Shard): ContactsRepo {
    return this.repos.get(shard) as ContactsRepo;
  }

  private of(userId: string): ContactsRepo {
    return this.on(this.router.forUser(userId));
  }

  exists(userId: string): Promise<boolean> {
    return this.of(userId).exists(userId);
  }

  get(userId: string): Promise<Contact | null> {
    return this.of(userId).get(userId);
  }

  async getMany(userIds: readonly string[]): Promise<Map<string, Contact>> {
    const maps = await Promise.all(
      [...byShard(this.router, userIds)].map(([shard, ids]) => this.on(shard).getMany(ids)),
    );
    return new Map(maps.flatMap((m) => [...m]));
  }

  put(userId: string, fields: ContactFields, nowMs: number, phoneChanged: boolean): Promise<Contact> {
    return this.of(userId).put(userId, fields, nowMs, phoneChanged);
  }

  deleteStatement(userId: string): D1PreparedStatement {
    return this.of(userId).deleteStatement(userId);
  }

  cleanupStatement(...args: Parameters<ContactsRepo['cleanupStatement']>): Promise<D1PreparedStatement> {
    return this.of(args[0].userId).cleanupStatement(...args);
  }

  optOutOfSms(userId: string, nowMs: number): D1PreparedStatement {
    return this.of(userId).optOutOfSms(userId, nowMs);
  }

  reencryptStatement(row: ContactRow): Promise<D1PreparedStatement> {
    return this.of(row.user_id).reencryptStatement(row);
  }
}

/** Preferences, each in its user's database. */
export class ShardedPreferences {
  private readonly repos = new Map<Shard, PreferencesRepo>();

  constructor(readonly router: ShardRouter) {
    for (const shard of router.databases) this.repos.set(shard, new PreferencesRepo(shard.db));
  }

  private of(userId: string): PreferencesRepo {
    return this.repos.get(this.router.forUser(userId)) as PreferencesRepo;
  }

  get(userId: string): Promise<Preferences | null> {
    return this.of(userId).get(userId);
  }

  async getMany(userIds: readonly string[]): Promise<Map<string, Preferences>> {
    const maps = await Promise.all(
      [...byShard(this.router, userIds)].map(([shard, ids]) =>
        (this.repos.get(shard) as PreferencesRepo).getMany(ids),
      ),
    );
    return new Map(maps.flatMap((m) => [...m]));
  }

  putStatement(userId: string, preferences: Preferences, nowMs: number): D1PreparedStatement {
    return this.of(userId).putStatement(userId, preferences, nowMs);
  }

  put(userId: string, preferences: Preferences, nowMs: number): Promise<void> {
    return this.of(userId).put(userId, preferences, nowMs);
  }

  deleteStatement(userId: string): D1PreparedStatement {
    return this.of(userId).deleteStatement(userId);
  }
}

/** Users' own keys, each in its user's database (it moves with the user's bucket). */
export class ShardedUserKeys {
  private readonly repos = new Map<Shard, UserKeysRepo>();

  constructor(
    readonly router: ShardRouter,
    cipher: () => Promise<FieldCipher>,
  ) {
    for (const shard of router.databases) this.repos.set(shard, new UserKeysRepo(shard.db, cipher));
  }

  /** The repository of one database (key rotation goes one by one). */
  on(shard: Shard): UserKeysRepo {
    return this.repos.get(shard) as UserKeysRepo;
  }

  private of(userId: string): UserKeysRepo {
    return this.on(this.router.forUser(userId));
  }

  async wrappedFor(userIds: readonly string[]): Promise<Map<string, string | null>> {
    const maps = await Promise.all(
      [...byShard(this.router, userIds)].map(([shard, ids]) => this.on(shard).wrappedFor(ids)),
    );
    return new Map(maps.flatMap((m) => [...m]));
  }

  hasKey(userId: string): Promise<boolean> {
    return this.of(userId).hasKey(userId);
  }

  destroyed(userId: string): Promise<boolean> {
    return this.of(userId).destroyed(userId);
  }

  /** One statement per database the users live in. */
  insertStatements(
    keys: readonly { userId: string; wrapped: string }[],
    nowMs: number,
  ): D1PreparedStatement[] {
    const byUser = new Map(keys.map((key) => [key.userId, key]));
    return [...byShard(this.router, [...byUser.keys()])].map(([shard, ids]) =>
      this.on(shard).insertStatement(
        ids.map((id) => byUser.get(id) as { userId: string; wrapped: string }),
        nowMs,
      ),
    );
  }

  eraseStatement(userId: string, nowMs: number): D1PreparedStatement {
    return this.of(userId).eraseStatement(userId, nowMs);
  }
}
