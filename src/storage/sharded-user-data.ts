import type { Contact } from '../domain/contact';
import type { Preferences } from '../domain/preferences';
import type { FieldCipher } from '../lib/field-crypto';
import { type ContactFields, type ContactRow, ContactsRepo } from './contacts-repo';
import { PerShard } from './per-shard';
import { PreferencesRepo } from './preferences-repo';
import type { ShardRouter } from './shard-router';
import { UserKeysRepo } from './user-keys-repo';

/** Contacts, each in its user's database. */
export class ShardedContacts extends PerShard<ContactsRepo> {
  constructor(router: ShardRouter, cipher: () => Promise<FieldCipher>) {
    super(router, (db) => new ContactsRepo(db, cipher));
  }

  exists(userId: string): Promise<boolean> {
    return this.ofUser(userId).exists(userId);
  }

  get(userId: string): Promise<Contact | null> {
    return this.ofUser(userId).get(userId);
  }

  getMany(userIds: readonly string[]): Promise<Map<string, Contact>> {
    return this.mergedByUser(userIds, (repo, ids) => repo.getMany(ids));
  }

  put(userId: string, fields: ContactFields, nowMs: number, phoneChanged: boolean): Promise<Contact> {
    return this.ofUser(userId).put(userId, fields, nowMs, phoneChanged);
  }

  deleteStatement(userId: string): D1PreparedStatement {
    return this.ofUser(userId).deleteStatement(userId);
  }

  cleanupStatement(...args: Parameters<ContactsRepo['cleanupStatement']>): Promise<D1PreparedStatement> {
    return this.ofUser(args[0].userId).cleanupStatement(...args);
  }

  optOutOfSms(userId: string, nowMs: number): D1PreparedStatement {
    return this.ofUser(userId).optOutOfSms(userId, nowMs);
  }

  reencryptStatement(row: ContactRow): Promise<D1PreparedStatement> {
    return this.ofUser(row.user_id).reencryptStatement(row);
  }
}

/** Preferences, each in its user's database. */
export class ShardedPreferences extends PerShard<PreferencesRepo> {
  constructor(router: ShardRouter) {
    super(router, (db) => new PreferencesRepo(db));
  }

  get(userId: string): Promise<Preferences | null> {
    return this.ofUser(userId).get(userId);
  }

  getMany(userIds: readonly string[]): Promise<Map<string, Preferences>> {
    return this.mergedByUser(userIds, (repo, ids) => repo.getMany(ids));
  }

  putStatement(userId: string, preferences: Preferences, nowMs: number): D1PreparedStatement {
    return this.ofUser(userId).putStatement(userId, preferences, nowMs);
  }

  put(userId: string, preferences: Preferences, nowMs: number): Promise<void> {
    return this.ofUser(userId).put(userId, preferences, nowMs);
  }

  deleteStatement(userId: string): D1PreparedStatement {
    return this.ofUser(userId).deleteStatement(userId);
  }
}

/** Users' own keys, each in its user's database (it moves with the user's bucket). */
export class ShardedUserKeys extends PerShard<UserKeysRepo> {
  constructor(router: ShardRouter, cipher: () => Promise<FieldCipher>) {
    super(router, (db) => new UserKeysRepo(db, cipher));
  }

  wrappedFor(userIds: readonly string[]): Promise<Map<string, string | null>> {
    return this.mergedByUser(userIds, (repo, ids) => repo.wrappedFor(ids));
  }

  hasKey(userId: string): Promise<boolean> {
    return this.ofUser(userId).hasKey(userId);
  }

  destroyed(userId: string): Promise<boolean> {
    return this.ofUser(userId).destroyed(userId);
  }

  /** One statement per database the users live in. */
  insertStatements(
    keys: readonly { userId: string; wrapped: string }[],
    nowMs: number,
  ): D1PreparedStatement[] {
    const byUser = new Map(keys.map((key) => [key.userId, key]));
    return this.byUser([...byUser.keys()], (repo, ids) =>
      repo.insertStatement(
        ids.map((id) => byUser.get(id) as { userId: string; wrapped: string }),
        nowMs,
      ),
    );
  }

  eraseStatement(userId: string, nowMs: number): D1PreparedStatement {
    return this.ofUser(userId).eraseStatement(userId, nowMs);
  }
}
