import { groupBy } from '../../lib/collections';
import { isSealed } from '../../lib/user-key';
import type { Services } from '../container';
import { ensureUserKeys, existingUserKeys } from '../recipients/user-keys';

/**
 * Archived rows carry their personal fields sealed with the key of the user they belong to, on
 * top of their encryption under DATA_ENCRYPTION_KEY: erasing the user destroys that key, so every
 * archived copy becomes unreadable while the archive's objects stay as written.
 *
 * Whose a field is: a delivery's `address` is its user's; a part head's template `data` is the
 * user's when every delivery of that part goes to that one user. Data shared with other
 * recipients stays under the deployment key only, as erasure leaves it in D1. Deliveries to an
 * inline recipient without a user id have no user key (erasure goes by user id).
 */
type Row = Record<string, unknown>;
const FIELDS = ['address', 'data'] as const;
type Field = (typeof FIELDS)[number];

const aadOf = (row: Row, field: Field) => `archive.${field}:${String(row.id)}`;

/** Values that hold nothing personal: absent, or already erased in D1. */
const isPersonal = (value: unknown): value is string =>
  typeof value === 'string' && !value.startsWith('erased:');

/** The user whose key seals each row's fields (rows of whole notification parts, as retention reads them). */
function ownersOf(rows: readonly Row[]): Map<Row, Partial<Record<Field, string>>> {
  const partUsers = new Map<unknown, Set<unknown>>();
  for (const [head, part] of groupBy(rows, (row) => row.head_id ?? row.id)) {
    partUsers.set(head, new Set(part.map((row) => row.user_id ?? null)));
  }
  const owners = new Map<Row, Partial<Record<Field, string>>>();
  for (const row of rows) {
    const user = typeof row.user_id === 'string' ? row.user_id : undefined;
    const users = partUsers.get(row.id);
    const isHead = row.head_id == null || row.head_id === row.id;
    const ownsData = isHead && users?.size === 1 && users.has(user ?? null);
    owners.set(row, {
      ...(user && isPersonal(row.address) ? { address: user } : {}),
      ...(user && ownsData && isPersonal(row.data) ? { data: user } : {}),
    });
  }
  return owners;
}

/** The rows as the archive stores them (keys made and stored first for users without one). */
export async function sealForArchive(services: Services, rows: readonly Row[]): Promise<Row[]> {
  const owners = ownersOf(rows);
  const users = [...owners.values()].flatMap((o) => Object.values(o));
  const keys = await ensureUserKeys(services, users);
  return Promise.all(
    rows.map(async (row) => {
      const sealed: Row = { ...row };
      for (const [field, user] of Object.entries(owners.get(row) ?? {}) as [Field, string][]) {
        // No key: the user was erased after these rows were read; their copy is not archived.
        const key = keys.get(user);
        sealed[field] = key ? await key.seal(String(row[field]), aadOf(row, field)) : null;
      }
      return sealed;
    }),
  );
}

/** Archived rows opened back into the rows D1 held, and how many fields were erased meanwhile. */
export interface OpenedArchive {
  rows: Row[];
  /** Fields whose user was erased since they were archived: null in `rows`, unreadable forever. */
  erased: number;
}

export async function openArchived(services: Services, rows: readonly Row[]): Promise<OpenedArchive> {
  const sealedUsers = rows
    .filter((row) => FIELDS.some((f) => isSealed(row[f])))
    .map((row) => String(row.user_id));
  const keys = await existingUserKeys(services, sealedUsers);
  let erased = 0;
  const opened = await Promise.all(
    rows.map(async (row) => {
      const plain: Row = { ...row };
      for (const field of FIELDS) {
        const value = row[field];
        if (!isSealed(value)) continue;
        const key = keys.get(String(row.user_id));
        if (key) plain[field] = await key.open(value, aadOf(row, field));
        else {
          plain[field] = null;
          erased += 1;
        }
      }
      return plain;
    }),
  );
  return { rows: opened, erased };
}
