import type { Channel } from './channels';

/** The parts a channel's template has, and whether each is HTML (escaped output) or plain text. */
export const TEMPLATE_PARTS: Record<Channel, readonly { name: string; html: boolean; required: boolean }[]> =
  {
    email: [
      { name: 'subject', html: false, required: true },
      { name: 'html', html: true, required: false },
      { name: 'text', html: false, required: true },
    ],
    sms: [{ name: 'text', html: false, required: true }],
    push: [
      { name: 'title', html: false, required: true },
      { name: 'body', html: false, required: true },
    ],
    chat: [{ name: 'text', html: false, required: true }],
    webhook: [{ name: 'json', html: false, required: true }],
    inapp: [
      { name: 'title', html: false, required: true },
      { name: 'body', html: false, required: true },
      { name: 'url', html: false, required: false },
      { name: 'avatar', html: false, required: false },
      /** JSON: up to two `{ "label", "url" }`. */
      { name: 'actions', html: false, required: false },
      /** JSON: what the client app gets with the item. */
      { name: 'data', html: false, required: false },
    ],
  };

/** A channel's template as stored: its Liquid sources per part, and a content hash as its version. */
export interface ChannelTemplate {
  type: string;
  channel: Channel;
  parts: Record<string, string>;
  version: string;
  /** The locale variant rendered, absent for the default. */
  locale?: string;
}
