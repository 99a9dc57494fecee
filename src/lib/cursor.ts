import { fromBase64, toBase64Url } from './encoding';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A position in a list ordered by creation time, then id. */
export interface Cursor {
  createdAt: number;
  id: string;
}

/** The opaque cursor of a list row: `<createdAt ms>|<id>`, base64url. */
export function encodeCursor(cursor: Cursor): string {
  return toBase64Url(encoder.encode(`${cursor.createdAt}|${cursor.id}`));
}

/** Reads a cursor this API wrote (either base64 alphabet); undefined when it is not one. */
export function decodeCursor(text: string): Cursor | undefined {
  if (text.length > 400) return undefined;
  const bytes = fromBase64(text);
  if (!bytes) return undefined;
  const [at, ...rest] = decoder.decode(bytes).split('|');
  const createdAt = Number(at);
  return at && Number.isFinite(createdAt) && rest.length > 0 ? { createdAt, id: rest.join('|') } : undefined;
}
