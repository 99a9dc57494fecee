import type { Contact, DeviceToken, ExternalChannel } from '../domain/contact';

interface ContactRow {
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
const MAX_PARAMS = 100;

function toContact(row: ContactRow): Contact {
  return {
    userId: row.user_id,
    email: row.email,
    phone: row.phone,
    deviceTokens: JSON.parse(row.device_tokens) as DeviceToken[],
    externalChannels: JSON.parse(row.external_channels) as ExternalChannel[],
    locale: row.locale,
    timezone: row.timezone,
    smsOptedOut: row.sms_opted_out === 1,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

export type ContactFields = Omit<Contact, 'userId' | 'createdAt' | 'updatedAt' | 'smsOptedOut'>;

/** The only code that knows how contacts are stored. */
export class ContactsRepo {
  constructor(private readonly db: D1Database) {}

  async get(userId: string): Promise<Contact | null> {
    const row = await this.db
      .prepare('SELECT * FROM contacts WHERE user_id = ?')
      .bind(userId)
      .first<ContactRow>();
    return row ? toContact(row) : null;
  }

  /** Loads many contacts with as few queries as the parameter limit allows. */
  async getMany(userIds: readonly string[]): Promise<Map<string, Contact>> {
    const unique = [...new Set(userIds)];
    const found = new Map<string, Contact>();
    for (let i = 0; i < unique.length; i += MAX_PARAMS) {
      const chunk = unique.slice(i, i + MAX_PARAMS);
      const { results } = await this.db
        .prepare(`SELECT * FROM contacts WHERE user_id IN (${chunk.map(() => '?').join(',')})`)
        .bind(...chunk)
        .all<ContactRow>();
      for (const row of results) found.set(row.user_id, toContact(row));
    }
    return found;
  }

  /** Creates or replaces the contact; keeps `created_at` and the SMS opt-out of an existing one. */
  async put(userId: string, fields: ContactFields, nowMs: number): Promise<Contact> {
    const row = await this.db
      .prepare(
        `INSERT INTO contacts (user_id, email, phone, device_tokens, external_channels, locale, timezone, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, phone = excluded.phone,
           device_tokens = excluded.device_tokens, external_channels = excluded.external_channels,
           locale = excluded.locale, timezone = excluded.timezone, updated_at = excluded.updated_at,
           sms_opted_out = CASE WHEN contacts.phone IS excluded.phone THEN contacts.sms_opted_out ELSE 0 END
         RETURNING *`,
      )
      .bind(
        userId,
        fields.email,
        fields.phone,
        JSON.stringify(fields.deviceTokens),
        JSON.stringify(fields.externalChannels),
        fields.locale,
        fields.timezone,
        nowMs,
        nowMs,
      )
      .first<ContactRow>();
    if (!row) throw new Error('contact upsert returned no row');
    return toContact(row);
  }

  async delete(userId: string): Promise<boolean> {
    const result = await this.db.prepare('DELETE FROM contacts WHERE user_id = ?').bind(userId).run();
    return result.meta.changes > 0;
  }

  /** Statement removing one device token (a provider proved it dead); for the outcome batch. */
  removeDeviceToken(userId: string, deviceToken: string, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare(
        `UPDATE contacts SET updated_at = ?, device_tokens = (
           SELECT coalesce(json_group_array(json(value)), '[]') FROM json_each(contacts.device_tokens)
           WHERE json_extract(value, '$.deviceToken') IS NOT ?)
         WHERE user_id = ?`,
      )
      .bind(nowMs, deviceToken, userId);
  }

  /** Statement setting `status: false` on the external channel with this URL or chat id. */
  disableExternalChannel(userId: string, target: string, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare(
        `UPDATE contacts SET updated_at = ?, external_channels = (
           SELECT coalesce(json_group_array(CASE
             WHEN json_extract(value, '$.url') IS ? OR json_extract(value, '$.chatId') IS ?
             THEN json_set(value, '$.status', json('false')) ELSE json(value) END), '[]')
           FROM json_each(contacts.external_channels))
         WHERE user_id = ?`,
      )
      .bind(nowMs, target, target, userId);
  }

  /** Statement recording that the user texted STOP (Twilio 21610): no SMS until the number changes. */
  optOutOfSms(userId: string, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare('UPDATE contacts SET sms_opted_out = 1, updated_at = ? WHERE user_id = ?')
      .bind(nowMs, userId);
  }
}
