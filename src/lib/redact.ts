const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
/** Phone-like digit runs, but not ISO dates and times (`2026-01-15T06:00`), which reasons carry. */
const PHONE = /(?<![\d-])(?!\d{4}-\d{2}-\d{2})\+?\d[\d\s().-]{7,}\d/g;
const URL_PATTERN = /https?:\/\/[^\s"'<>]+/g;
/** Webhook secrets and bearer credentials, whatever their length. */
const SECRET = /\b(?:whsec_|hk_live_|Bearer\s+)[A-Za-z0-9+/=_.-]+/g;
/**
 * Long opaque strings (device tokens, API keys, signatures), except Herald's own ids
 * (`dlv_…`, `ntf_…`), which are not personal and are what an operator searches logs for.
 */
const LONG_TOKEN = /\b(?!(?:dlv|ntf|key|req)_)[A-Za-z0-9_+/=-]{24,}/g;

/**
 * Masks emails, phone numbers, URLs (down to their origin), secrets and long tokens inside free
 * text: provider error bodies often echo the address they refused, and such text is logged and
 * kept in a delivery's history.
 */
export function redact(text: string): string {
  return text
    .replace(SECRET, '[secret]')
    .replace(URL_PATTERN, (url) => {
      try {
        return `${new URL(url).origin}/…`;
      } catch {
        return '[url]';
      }
    })
    .replace(EMAIL, '[email]')
    .replace(LONG_TOKEN, '[token]')
    .replace(PHONE, '[phone]');
}
