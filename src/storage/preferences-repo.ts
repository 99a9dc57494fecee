import type { Preferences } from '../domain/preferences';
import { bucketOfKey } from '../domain/shards';
import { rowsByKey } from './rows-by-key';

interface SettingsRow {
  user_id: string;
  channels: string;
  types: string;
  quiet_hours: string | null;
  updated_at: number;
}

const _MAX_PARAMS = 100;

function toPreferences(row: SettingsRow): Preferences {
  return {
    channels: JSON.parse(row.channels) as Preferences['channels'],
    types: JSON.parse(row.types) as Preferences['types'],
    quietHours: row.quiet_hours ? (JSON.parse(row.quiet_hours) as Preferences['quietHours']) : null,
  };
}

/** The only code with SQL for notification_settings. */
export class PreferencesRepo {
  constructor(private readonly db: D1Database) {}

  async get(userId: string): Promise<Preferences | null> {
    const row = await this.db
      .prepare('SELECT * FROM notification_settings WHERE user_id = ?')
      .bind(userId)
      .first<SettingsRow>();
    return row ? toPreferences(row) : null;
  }

  /** One query per 100 users: the consumer loads a batch's preferences at once. */
  async getMany(userIds: readonly string[]): Promise<Map<string, Preferences>> {
    const rows = await rowsByKey<SettingsRow>(
      this.db,
      { table: 'notification_settings', key: 'user_id' },
      userIds,
    );
    return new Map(rows.map((row) => [row.user_id, toPreferences(row)]));
  }

  putStatement(userId: string, preferences: Preferences, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare(
        `INSERT INTO notification_settings (user_id, channels, types, quiet_hours, updated_at, bucket) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET channels = excluded.channels, types = excluded.types, bucket = excluded.bucket,
           quiet_hours = excluded.quiet_hours, updated_at = excluded.updated_at`,
      )
      .bind(
        userId,
        JSON.stringify(preferences.channels),
        JSON.stringify(preferences.types),
        preferences.quietHours ? JSON.stringify(preferences.quietHours) : null,
        nowMs,
        bucketOfKey(userId),
      );
  }

  async put(userId: string, preferences: Preferences, nowMs: number): Promise<void> {
    await this.putStatement(userId, preferences, nowMs).run();
  }

  deleteStatement(userId: string): D1PreparedStatement {
    return this.db.prepare('DELETE FROM notification_settings WHERE user_id = ?').bind(userId);
  }
}
