import type { Channel } from '../domain/channels';
import { chunk } from '../lib/collections';

/** The only code with SQL for provider switches, alert digests and dead letters. */
export interface DeadLetter {
  deliveryId: string;
  channel: string;
  reason: string | null;
  createdAt: string;
}

export interface PendingAlert {
  key: string;
  message: string;
  count: number;
  firstAt: string;
  lastAt: string;
}

/** Ids bound per statement: D1 takes 100 parameters, a few are left for the others. */
const MAX_IDS_PER_STATEMENT = 95;

export class OperationsRepo {
  constructor(private readonly db: D1Database) {}

  async providerSwitches(): Promise<Map<string, boolean>> {
    const { results } = await this.db
      .prepare('SELECT name, enabled FROM provider_settings')
      .all<{ name: string; enabled: number }>();
    return new Map(results.map((r) => [r.name, r.enabled === 1]));
  }

  async setProviderEnabled(name: string, enabled: boolean, nowMs: number): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO provider_settings (name, enabled, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at`,
      )
      .bind(name, enabled ? 1 : 0, nowMs)
      .run();
  }

  /** Statement counting one more occurrence of an alert (one row per key until the digest). */
  raiseAlertStatement(key: string, message: string, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare(
        `INSERT INTO alerts (key, message, count, first_at, last_at) VALUES (?, ?, 1, ?, ?)
         ON CONFLICT (key) DO UPDATE SET count = alerts.count + 1, message = excluded.message, last_at = excluded.last_at`,
      )
      .bind(key, message, nowMs, nowMs);
  }

  /** Takes every pending alert (read and delete in one batch, so two crons never send one twice). */
  async takeAlerts(): Promise<PendingAlert[]> {
    const [taken] = await this.db.batch<{
      key: string;
      message: string;
      count: number;
      first_at: number;
      last_at: number;
    }>([this.db.prepare('DELETE FROM alerts RETURNING *')]);
    return (taken?.results ?? []).map((r) => ({
      key: r.key,
      message: r.message,
      count: r.count,
      firstAt: new Date(r.first_at).toISOString(),
      lastAt: new Date(r.last_at).toISOString(),
    }));
  }

  /** Puts alerts back when the digest could not be sent. */
  async restoreAlerts(alerts: readonly PendingAlert[]): Promise<void> {
    if (alerts.length === 0) return;
    await this.db.batch(
      alerts.map((a) =>
        this.db
          .prepare(
            `INSERT INTO alerts (key, message, count, first_at, last_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET count = alerts.count + excluded.count, first_at = min(alerts.first_at, excluded.first_at)`,
          )
          .bind(a.key, a.message, a.count, Date.parse(a.firstAt), Date.parse(a.lastAt)),
      ),
    );
  }

  recordDeadLetterStatement(
    deliveryId: string,
    channel: string,
    reason: string | null,
    nowMs: number,
  ): D1PreparedStatement {
    return this.db
      .prepare(
        `INSERT INTO dead_letters (delivery_id, channel, reason, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (delivery_id) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at, replayed_at = NULL`,
      )
      .bind(deliveryId, channel, reason, nowMs);
  }

  /** Before when deliveries were archived and removed (0: never). */
  async purgedBefore(): Promise<number> {
    const row = await this.db
      .prepare('SELECT purged_before FROM retention WHERE id = 1')
      .first<{ purged_before: number }>();
    return row?.purged_before ?? 0;
  }

  /** Statement moving the retention watermark forward (never back). */
  markPurgedStatement(beforeMs: number, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare(
        `INSERT INTO retention (id, purged_before, updated_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET purged_before = max(purged_before, ?1), updated_at = ?2`,
      )
      .bind(beforeMs, nowMs);
  }

  /** Statements removing the dead letters of these deliveries (retention). */
  deleteDeadLettersStatements(ids: readonly string[]): D1PreparedStatement[] {
    return chunk([...ids], 100).map((part) =>
      this.db
        .prepare(`DELETE FROM dead_letters WHERE delivery_id IN (${part.map(() => '?').join(',')})`)
        .bind(...part),
    );
  }

  async listDeadLetters(channel: string | undefined, limit: number): Promise<DeadLetter[]> {
    const { results } = await this.db
      .prepare(
        `SELECT delivery_id, channel, reason, created_at FROM dead_letters
         WHERE replayed_at IS NULL ${channel ? 'AND channel = ?' : ''} ORDER BY created_at DESC LIMIT ?`,
      )
      .bind(...(channel ? [channel, limit] : [limit]))
      .all<{ delivery_id: string; channel: string; reason: string | null; created_at: number }>();
    return results.map((r) => ({
      deliveryId: r.delivery_id,
      channel: r.channel,
      reason: r.reason,
      createdAt: new Date(r.created_at).toISOString(),
    }));
  }

  async countDeadLetters(): Promise<number> {
    const row = await this.db
      .prepare('SELECT count(*) AS n FROM dead_letters WHERE replayed_at IS NULL')
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  /**
   * Claims dead letters for a replay and runs `then` (the resets of their deliveries) in the same
   * atomic batch: an `UPDATE … WHERE replayed_at IS NULL … RETURNING`, so of two replays running at
   * once only one claims each dead letter. Only dead letters whose delivery is still `failed` (and
   * of `channel`, when given) are claimed. Returns the claimed delivery ids and their channels.
   */
  async claimForReplay(
    ids: readonly string[],
    channel: Channel | undefined,
    claimedAtMs: number,
    then: (claimedAtMs: number) => D1PreparedStatement[],
  ): Promise<{ id: string; channel: Channel }[]> {
    const claims: D1PreparedStatement[] = [];
    for (let i = 0; i < ids.length; i += MAX_IDS_PER_STATEMENT) {
      const chunk = ids.slice(i, i + MAX_IDS_PER_STATEMENT);
      claims.push(
        this.db
          .prepare(
            `UPDATE dead_letters SET replayed_at = ?
             WHERE replayed_at IS NULL AND delivery_id IN (${chunk.map(() => '?').join(',')}) ${channel ? 'AND channel = ?' : ''}
               AND EXISTS (SELECT 1 FROM deliveries d WHERE d.id = dead_letters.delivery_id AND d.status = 'failed')
             RETURNING delivery_id, channel`,
          )
          .bind(claimedAtMs, ...chunk, ...(channel ? [channel] : [])),
      );
    }
    if (claims.length === 0) return [];
    const results = await this.db.batch<{ delivery_id: string; channel: Channel }>([
      ...claims,
      ...then(claimedAtMs),
    ]);
    return results
      .slice(0, claims.length)
      .flatMap((r) => r.results.map((row) => ({ id: row.delivery_id, channel: row.channel })));
  }

  /** Statements making claimed dead letters replayable again (their replay was not enqueued). */
  unclaimReplayStatements(ids: readonly string[], claimedAtMs: number): D1PreparedStatement[] {
    const out: D1PreparedStatement[] = [];
    for (let i = 0; i < ids.length; i += MAX_IDS_PER_STATEMENT) {
      const chunk = ids.slice(i, i + MAX_IDS_PER_STATEMENT);
      out.push(
        this.db
          .prepare(
            `UPDATE dead_letters SET replayed_at = NULL
             WHERE replayed_at = ? AND delivery_id IN (${chunk.map(() => '?').join(',')})`,
          )
          .bind(claimedAtMs, ...chunk),
      );
    }
    return out;
  }
}
