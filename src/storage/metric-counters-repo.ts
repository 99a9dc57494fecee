import { type CountIncrement, DELIVERIES, PROVIDER_ERRORS } from '../domain/metric-counters';

/**
 * Adds one row's counts to what the table holds: each name of the new counts added to its value
 * there (or set), the other names left as they are; one row written whatever the number of names.
 * Only the new names are visited: D1 bills every JSON element a statement walks as a row read.
 */
const ADD_ON_CONFLICT = `ON CONFLICT (type) DO UPDATE SET counts = json_patch(counts, (
  SELECT json_group_object(e.key, e.value + coalesce(json_extract(metric_counters.counts, '$."' || e.key || '"'), 0))
  FROM json_each(excluded.counts) e))`;

/** SQL naming the count of deliveries of `channel` (a column) that entered `status` (an expression). */
export const deliveryCountSql = (channel: string, status: string): string =>
  `'${DELIVERIES}/' || ${channel} || '/' || ${status}`;

/** SQL naming the count of error answers of a provider (JSON `{ provider, class }` in `error`). */
export const providerErrorCountSql = (channel: string, error: string): string =>
  `'${PROVIDER_ERRORS}/' || ${channel} || '/' || json_extract(${error}, '$.provider') || '/' || json_extract(${error}, '$.class')`;

/**
 * SQL yielding counts already known (`type`, `key`, `n` rows) from a JSON array of
 * `CountIncrement`s in the parameter `param` (`?3`, say): for `countStatement`'s select.
 */
export const knownCountsSql = (param: string): string =>
  `SELECT json_extract(value, '$.type') AS type, json_extract(value, '$.key') AS key,
          json_extract(value, '$.n') AS n FROM json_each(${param})`;

/** Counts as a select yielded them (`type`, `key`, `n` rows), e.g. in a batch's results. */
export function countsOf(rows: readonly unknown[] | undefined): CountIncrement[] {
  return (rows ?? []).flatMap((row) => {
    const { type, key, n } = row as Partial<CountIncrement>;
    return typeof type === 'string' && typeof key === 'string' && typeof n === 'number' && n > 0
      ? [{ type, key, n }]
      : [];
  });
}

/**
 * The counters of one database (`metric_counters`, one row per notification type). Counts are
 * only ever added, each in the same batch as the write it counts, so a batch that fails counts
 * nothing and its retry counts once; except a provider answer's, found by its own commit and
 * added by its consumer batch's final commit (`addStatement`): lost, never doubled, if that one
 * fails. Nothing removes a row: retention and bucket moves leave the table alone.
 */
export class MetricCountersRepo {
  constructor(private readonly db: D1Database) {}

  /**
   * A statement adding what `select` yields when it runs, as rows of `type`, `key` (a count's name)
   * and `n`: one row written per type, none when it yields nothing. Placed in a batch just before
   * a conditional UPDATE and selecting the rows that UPDATE will change, it sees them as the UPDATE
   * will, so it counts exactly the changes that commit.
   */
  countStatement(select: string, params: readonly unknown[]): D1PreparedStatement {
    return this.db
      .prepare(
        `INSERT INTO metric_counters (type, counts)
         SELECT type, json_group_object(key, n) FROM (
           SELECT type, key, sum(n) AS n FROM (${select}) GROUP BY type, key)
         WHERE true GROUP BY type
         ${ADD_ON_CONFLICT}`,
      )
      .bind(...params);
  }

  /**
   * The statement adding counts already known (found by an earlier commit, see `countsOf`): one
   * row written per type, none for no counts. Nothing in it checks they were not added before: it
   * is run once for each time they were found.
   */
  addStatement(counts: readonly CountIncrement[]): D1PreparedStatement {
    return this.countStatement(knownCountsSql('?1'), [JSON.stringify(counts)]);
  }

  /** Every type's counts in this database (or one type's). */
  async all(type?: string): Promise<{ type: string; counts: Record<string, number> }[]> {
    const { results } = await this.db
      .prepare(`SELECT type, counts FROM metric_counters${type === undefined ? '' : ' WHERE type = ?'}`)
      .bind(...(type === undefined ? [] : [type]))
      .all<{ type: string; counts: string }>();
    return results.map((row) => ({
      type: row.type,
      counts: JSON.parse(row.counts) as Record<string, number>,
    }));
  }
}
