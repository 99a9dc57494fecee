import { chunk } from '../lib/collections';

/** Bound parameters one query may carry (D1 allows 100). */
const MAX_PARAMS = 100;

/**
 * `SELECT <columns> FROM <table> WHERE <key> IN (…)` over any number of keys (each once), one
 * query per 100: the one way the repositories read rows by a list of ids.
 */
export async function rowsByKey<T>(
  db: D1Database,
  query: { table: string; key: string; columns?: string },
  keys: readonly string[],
): Promise<T[]> {
  const rows: T[] = [];
  for (const part of chunk([...new Set(keys)], MAX_PARAMS)) {
    const { results } = await db
      .prepare(
        `SELECT ${query.columns ?? '*'} FROM ${query.table} WHERE ${query.key} IN (${part.map(() => '?').join(',')})`,
      )
      .bind(...part)
      .all<T>();
    rows.push(...results);
  }
  return rows;
}
