import type { Context } from 'hono';

/** The headers of a page Herald serves outside the dashboard: its CSP, never cached, no referrer. */
export function setPageHeaders(c: Context, csp: string): void {
  c.header('Content-Security-Policy', csp);
  c.header('Cache-Control', 'no-store');
  c.header('Referrer-Policy', 'no-referrer');
}
