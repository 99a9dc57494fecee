import { CHANNELS, type Channel, isChannel } from '../domain/channels';
import type { ChannelTemplate } from '../domain/template';
import { type TypeConfig, TypeConfigSchema } from '../domain/type-config';
import { canonicalJson, sha256Hex } from '../lib/crypto';
import { log } from '../lib/log';

/** Every template object lives under this R2 prefix: `templates/<type>/<channel>.json`. */
export const TEMPLATE_PREFIX = 'templates/';

/** How long an isolate trusts what it read from R2. */
const CACHE_TTL_MS = 60_000;

interface Cached<T> {
  value: T;
  expires: number;
}

export const templateKey = (type: string, channel: Channel) => `${TEMPLATE_PREFIX}${type}/${channel}.json`;
export const typeConfigKey = (type: string) => `${TEMPLATE_PREFIX}${type}/type.json`;

/** The stored form of a channel template. */
export interface StoredTemplate {
  parts: Record<string, string>;
}

export async function templateVersion(parts: Record<string, string>): Promise<string> {
  return (await sha256Hex(canonicalJson(parts))).slice(0, 16);
}

/**
 * Reads templates from R2 and keeps them in the isolate for a minute, so a busy consumer reads
 * each template at most once per minute. One store per isolate (module scope is per isolate).
 */
export class TemplatesStore {
  private readonly templates = new Map<string, Cached<ChannelTemplate | null>>();
  private readonly channelLists = new Map<string, Cached<Channel[]>>();
  private readonly typeConfigs = new Map<string, Cached<TypeConfig>>();

  constructor(
    private readonly bucket: R2Bucket,
    private readonly now: () => number = Date.now,
  ) {}

  async get(type: string, channel: Channel): Promise<ChannelTemplate | null> {
    const key = templateKey(type, channel);
    const hit = this.templates.get(key);
    if (hit && hit.expires > this.now()) return hit.value;
    const object = await this.bucket.get(key);
    let value: ChannelTemplate | null = null;
    if (object) {
      const stored = (await object.json()) as StoredTemplate;
      value = { type, channel, parts: stored.parts, version: await templateVersion(stored.parts) };
    }
    this.templates.set(key, { value, expires: this.now() + CACHE_TTL_MS });
    return value;
  }

  /** The channels that have a template for `type`, in Herald's channel order. */
  async channelsOf(type: string): Promise<Channel[]> {
    const hit = this.channelLists.get(type);
    if (hit && hit.expires > this.now()) return hit.value;
    const listed = await this.bucket.list({ prefix: `${TEMPLATE_PREFIX}${type}/` });
    const found = new Set<Channel>();
    for (const object of listed.objects) {
      const name = object.key.slice(`${TEMPLATE_PREFIX}${type}/`.length);
      const match = /^([a-z]+)\.json$/.exec(name);
      if (match?.[1] && isChannel(match[1])) found.add(match[1]);
    }
    const value = CHANNELS.filter((c) => found.has(c));
    this.channelLists.set(type, { value, expires: this.now() + CACHE_TTL_MS });
    return value;
  }

  /**
   * The type's configuration (`templates/<type>/type.json`), or every default when absent. A file
   * that no longer matches the schema is logged and ignored rather than blocking delivery.
   */
  async typeConfig(type: string): Promise<TypeConfig> {
    const hit = this.typeConfigs.get(type);
    if (hit && hit.expires > this.now()) return hit.value;
    const object = await this.bucket.get(typeConfigKey(type));
    let value: TypeConfig = {};
    if (object) {
      const parsed = TypeConfigSchema.safeParse(await object.json().catch(() => null));
      if (parsed.success) value = parsed.data;
      else log('error', 'template.type_config_invalid', { type });
    }
    this.typeConfigs.set(type, { value, expires: this.now() + CACHE_TTL_MS });
    return value;
  }

  async put(type: string, channel: Channel, parts: Record<string, string>): Promise<void> {
    await this.bucket.put(templateKey(type, channel), JSON.stringify({ parts } satisfies StoredTemplate), {
      httpMetadata: { contentType: 'application/json' },
    });
    this.templates.delete(templateKey(type, channel));
    this.channelLists.delete(type);
  }
}
