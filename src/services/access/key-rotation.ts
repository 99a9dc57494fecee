import { log } from '../../lib/log';
import type { Services } from '../container';

export type RotationTable = 'contacts' | 'deliveries';

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
  if (table === 'contacts') {
    const { stale, next } = await services.contacts.rotationPage(cursor, limit);
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
    return { table, rotated: statements.length, unreadable, nextCursor: next };
  }
  const { statements, unreadable, next } = await services.deliveries.rotationPage(cursor, limit);
  if (statements.length > 0) await services.commit(statements);
  return { table, rotated: statements.length, unreadable, nextCursor: next };
}
