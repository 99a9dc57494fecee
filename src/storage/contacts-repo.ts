import type { Contact, DeviceToken, ExternalChannel } from '../domain/contact';
import { bucketOfKey } from '../domain/shards';
import type { FieldCipher } from '../lib/field-crypto';
import { rowsByKey } from './rows-by-key';

export interface ContactRow {
  user_id: string;
  email: string | null;
  phone: string | null;
  device_tokens: string;
  external_channels: string;
  locale: string | null;
  timezone: string | null;
  sms_opted_out: number;
  created_at: number;
  updated_at: number;
}

/** D1 binds at most 100 parameters per statement. */
const _MAX_PARAMS = 100;

/** The columns holding personal data: encrypted with the row's user id as additional data. */
const aad = (column: string, userId: string) => `contacts.${column}:${userId}`;

export type ContactFields = Omit<Contact, 'userId' | 'createdAt' | 'updatedAt' | 'smsOptedOut'>;

/**
 * The only code that knows how contacts are stored. Email, phone, device tokens and external
 * channels are AES-256-GCM encrypted (field-crypto), bound to their column and user id, so a D1
 * export holds no address in clear and a ciphertext cannot be moved to another row.
 */
export class ContactsRepo {
  constructor(
    private readonly db: D1Database,
    private readonly cipher: () => Promise<FieldCipher>,
  ) {}

  private async toContact(row: ContactRow): Promise<Contact> {
    const cipher = await this.cipher();
    const open = (column: string, value: string | null) =>
      value === null ? null : cipher.decrypt(value, aad(column, row.user_id));
    const [email, phone, tokens, channels] = await Promise.all([
      open('email', row.email),
      open('phone', row.phone),
      open('device_tokens', row.device_tokens),
      open('external_channels', row.external_channels),
    ]);
    return {
      userId: row.user_id,
      email,
      phone,
      deviceTokens: JSON.parse(tokens ?? '[]') as DeviceToken[],
      externalChannels: JSON.parse(channels ?? '[]') as ExternalChannel[],
      locale: row.locale,
      timezone: row.timezone,
      smsOptedOut: row.sms_opted_out === 1,
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }

  /** The encrypted column values of a contact. */
  private async seal(
    userId: string,
    fields: Pick<ContactFields, 'email' | 'phone' | 'deviceTokens' | 'externalChannels'>,
  ) {
    const cipher = await this.cipher();
    const [email, phone, deviceTokens, externalChannels] = await Promise.all([
      fields.email === null ? null : cipher.encrypt(fields.email, aad('email', userId)),
      fields.phone === null ? null : cipher.encrypt(fields.phone, aad('phone', userId)),
      cipher.encrypt(JSON.stringify(fields.deviceTokens), aad('device_tokens', userId)),
      cipher.encrypt(JSON.stringify(fields.externalChannels), aad('external_channels', userId)),
    ]);
    return { email, phone, deviceTokens, externalChannels };
  }

  /** Whether a contact row exists (no decryption). */
  async exists(userId: string): Promise<boolean> {
    const row = await this.db
      .prepare('SELECT 1 AS found FROM contacts WHERE user_id = ?')
      .bind(userId)
      .first();
    return row !== null;
  }

  async get(userId: string): Promise<Contact | null> {
    const row = await this.db
      .prepare('SELECT * FROM contacts WHERE user_id = ?')
      .bind(userId)
      .first<ContactRow>();
    return row ? this.toContact(row) : null;
  }

  /** Loads many contacts with as few queries as the parameter limit allows. */
  async getMany(userIds: readonly string[]): Promise<Map<string, Contact>> {
    const rows = await rowsByKey<ContactRow>(this.db, { table: 'contacts', key: 'user_id' }, userIds);
    const contacts = await Promise.all(rows.map((row) => this.toContact(row)));
    return new Map(contacts.map((contact) => [contact.userId, contact]));
  }

  /**
   * Creates or replaces the contact; keeps `created_at`, and keeps the SMS opt-out unless the phone
   * number changed (ciphertexts differ on every write, so the caller says whether it did).
   */
  async put(userId: string, fields: ContactFields, nowMs: number, phoneChanged: boolean): Promise<Contact> {
    const sealed = await this.seal(userId, fields);
    const row = await this.db
      .prepare(
        `INSERT INTO contacts (user_id, email, phone, device_tokens, external_channels, locale, timezone, created_at, updated_at, bucket)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, phone = excluded.phone, bucket = excluded.bucket,
           device_tokens = excluded.device_tokens, external_channels = excluded.external_channels,
           locale = excluded.locale, timezone = excluded.timezone, updated_at = excluded.updated_at,
           sms_opted_out = CASE WHEN ? THEN 0 ELSE contacts.sms_opted_out END
         RETURNING *`,
      )
      .bind(
        userId,
        sealed.email,
        sealed.phone,
        sealed.deviceTokens,
        sealed.externalChannels,
        fields.locale,
        fields.timezone,
        nowMs,
        nowMs,
        bucketOfKey(userId),
        phoneChanged ? 1 : 0,
      )
      .first<ContactRow>();
    if (!row) throw new Error('contact upsert returned no row');
    return this.toContact(row);
  }

  deleteStatement(userId: string): D1PreparedStatement {
    return this.db.prepare('DELETE FROM contacts WHERE user_id = ?').bind(userId);
  }

  /**
   * Statement writing a contact's cleaned addresses (a provider proved a token or channel dead).
   * It applies only if the contact did not change since it was read, so a concurrent edit wins.
   */
  async cleanupStatement(
    contact: Contact,
    next: Pick<Contact, 'deviceTokens' | 'externalChannels'>,
    nowMs: number,
  ): Promise<D1PreparedStatement> {
    const sealed = await this.seal(contact.userId, { ...contact, ...next });
    return this.db
      .prepare(
        'UPDATE contacts SET device_tokens = ?, external_channels = ?, updated_at = ? WHERE user_id = ? AND updated_at = ?',
      )
      .bind(
        sealed.deviceTokens,
        sealed.externalChannels,
        nowMs,
        contact.userId,
        Date.parse(contact.updatedAt),
      );
  }

  /** Statement recording that the user texted STOP (Twilio 21610): no SMS until the number changes. */
  optOutOfSms(userId: string, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare('UPDATE contacts SET sms_opted_out = 1, updated_at = ? WHERE user_id = ?')
      .bind(nowMs, userId);
  }

  /**
   * One page of rows for key rotation (by user id, after `cursor`), with the ones whose
   * ciphertexts were written under an older key (or in clear) picked out.
   */
  async rotationPage(cursor: string, limit: number): Promise<{ stale: ContactRow[]; next: string | null }> {
    const cipher = await this.cipher();
    const { results } = await this.db
      .prepare('SELECT * FROM contacts WHERE user_id > ? ORDER BY user_id LIMIT ?')
      .bind(cursor, limit)
      .all<ContactRow>();
    const stale = results.filter((r) =>
      [r.email, r.phone, r.device_tokens, r.external_channels].some(
        (v) => v !== null && cipher.needsRotation(v),
      ),
    );
    return { stale, next: results.length === limit ? (results.at(-1)?.user_id ?? null) : null };
  }

  /** Re-encrypts one row under the current key (read, decrypt with any key, encrypt with the first). */
  async reencryptStatement(row: ContactRow): Promise<D1PreparedStatement> {
    const contact = await this.toContact(row);
    const sealed = await this.seal(contact.userId, contact);
    return this.db
      .prepare(
        'UPDATE contacts SET email = ?, phone = ?, device_tokens = ?, external_channels = ? WHERE user_id = ? AND updated_at = ?',
      )
      .bind(
        sealed.email,
        sealed.phone,
        sealed.deviceTokens,
        sealed.externalChannels,
        row.user_id,
        row.updated_at,
      );
  }
}
