/**
 * The retention archive in R2 (`ARCHIVE`): deliveries removed from D1, as they were stored
 * (addresses and data still encrypted), newline-delimited JSON, gzip. One object per database and
 * hour of creation; an hour larger than one run's bound is written in parts named by their first
 * and last id, so writing a part again (a run that died before its delete) replaces it.
 */
export const ARCHIVE_PREFIX = 'deliveries/';

/** `deliveries/<database>/<yyyy>/<mm>/<dd>/<hh>/<first id>_<last id>.ndjson.gz` */
export function archiveKey(database: string, hourMs: number, firstId: string, lastId: string): string {
  const iso = new Date(hourMs).toISOString();
  const [date = '', time = ''] = iso.split('T');
  const [y, m, d] = date.split('-');
  return `${ARCHIVE_PREFIX}${database}/${y}/${m}/${d}/${time.slice(0, 2)}/${firstId}_${lastId}.ndjson.gz`;
}

/** Gzips newline-delimited JSON of `rows`. */
export async function gzipNdjson(rows: readonly Record<string, unknown>[]): Promise<Uint8Array> {
  const text = rows.map((row) => JSON.stringify(row)).join('\n');
  const stream = new Blob([`${text}\n`]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Reads an archive object back: the rows it holds. */
export async function gunzipNdjson(bytes: ArrayBuffer | Uint8Array): Promise<Record<string, unknown>[]> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const text = await new Response(stream).text();
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

export class ArchiveStore {
  constructor(private readonly bucket: R2Bucket) {}

  /** Writes one part; returns its key and size. */
  async put(key: string, rows: readonly Record<string, unknown>[]): Promise<{ key: string; bytes: number }> {
    const body = await gzipNdjson(rows);
    await this.bucket.put(key, body, {
      httpMetadata: { contentType: 'application/x-ndjson', contentEncoding: 'gzip' },
      customMetadata: { rows: String(rows.length) },
    });
    return { key, bytes: body.byteLength };
  }

  async read(key: string): Promise<Record<string, unknown>[] | null> {
    const object = await this.bucket.get(key);
    return object ? gunzipNdjson(await object.arrayBuffer()) : null;
  }
}
