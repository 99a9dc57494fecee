import { log } from '../../lib/log';
import type { Shard } from '../../storage/shard-router';
import type { Services } from '../container';

export type RotationTable = 'contacts' | 'deliveries' | 'user_keys';

/**
 * Re-encrypts one page of personal data under the first key of DATA_ENCRYPTION_KEY. Rotation:
 * put a new key first in the secret (`new:…,old:…`), deploy, call this until every table reports
 * no next cursor (`npm run rotate-key` does), then drop the old key from the secret.
 */
export async function rotatePage(
  services: Services,
  table: RotationTable,
  cursor: string,
  limit: number,
): Promise<{ table: RotationTable; rotated: number; unreadable: number; nextCursor: string | null }> {
  // The cursor names the database too (`<index>|<cursor in it>`): the pages go database by database.
  const shards = services.router.shards;
  const bar = cursor.indexOf('|');
  const index = bar > 0 ? Number(cursor.slice(0, bar)) : 0;
  const shard = shards[index] ?? shards[0];
  if (!shard) throw new Error('no database to rotate');
  const page = await rotateIn(services, shard, table, bar > 0 ? cursor.slice(bar + 1) : cursor, limit);
  const nextCursor =
    page.next !== null ? `${index}|${page.next}` : index + 1 < shards.length ? `${index + 1}|` : null;
  return { table, rotated: page.rotated, unreadable: page.unreadable, nextCursor };
}

async function rotateIn(
  services: Services,
  shard: Shard,
  table: RotationTable,
  cursor: string,
  limit: number,
): Promise<{ rotated: number; unreadable: number; next: string | null }> {
  if (table === 'contacts') {
    const { stale, next } = await services.contacts.on(shard).rotationPage(cursor, limit);
    const statements: D1PreparedStatement[] = [];
    let unreadable = 0;
    for (const row of stale) {
      try {
        statements.push(await services.contacts.reencryptStatement(row));
      } catch {
        // A row no listed key opens (tampered, or its key already dropped): leave it, say so.
        unreadable += 1;
        log('error', 'rotation.unreadable_row', { table, userId: row.user_id });
      }
    }
    if (statements.length > 0) await services.commit(statements);
    return { rotated: statements.length, unreadable, next };
  }
  const repo = table === 'deliveries' ? services.deliveries.on(shard) : services.userKeys.on(shard);
  const { statements, unreadable, next } = await repo.rotationPage(cursor, limit);
  if (statements.length > 0) await services.commit(statements);
  return { rotated: statements.length, unreadable, next };
}
