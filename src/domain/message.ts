/**
 * A message rendered from a template for one delivery. Which fields are set depends on the channel:
 * email has subject/html/text, sms text, push title/body, chat text, webhook json.
 */
export interface RenderedMessage {
  subject?: string;
  html?: string;
  text?: string;
  title?: string;
  body?: string;
  /** Webhook payload, or extra key/value data for push. */
  json?: unknown;
  /** Extra headers a channel carries (email: List-Unsubscribe ...). */
  headers?: Record<string, string>;
  /** Optional URL opened when a push, chat or in-app message is tapped. */
  url?: string;
  /** In-app: an image shown with the item. */
  avatar?: string;
  /** In-app: up to two buttons. */
  actions?: { label: string; url: string }[];
  /** In-app: data the client app gets with the item. */
  data?: unknown;
}
