import { CHANNELS, type Channel, isChannel } from '../domain/channels';
import type { ChannelTemplate } from '../domain/template';
import { type TypeConfig, TypeConfigSchema } from '../domain/type-config';
import { canonicalJson, sha256Hex } from '../lib/crypto';
import { log } from '../lib/log';

/**
 * Every template object lives under this R2 prefix:
 * - `templates/<type>/<channel>.json` — the default template of a channel (`{ parts }`);
 * - `templates/<type>/<channel>.<locale>.json` — a localized one (`fr`, `fr-CA`);
 * - `templates/<type>/type.json` — the type's configuration;
 * - `templates/<type>/versions/<channel>[.<locale>]/<version>.json` — every version ever stored,
 *   so any sent message can be reproduced from the version recorded on its delivery.
 */
export const TEMPLATE_PREFIX = 'templates/';

/** How long an isolate trusts what it read from R2. */
const CACHE_TTL_MS = 60_000;

interface Cached<T> {
  value: T;
  expires: number;
}

const variant = (channel: Channel, locale?: string) => (locale ? `${channel}.${locale}` : channel);
export const templateKey = (type: string, channel: Channel, locale?: string) =>
  `${TEMPLATE_PREFIX}${type}/${variant(channel, locale)}.json`;
export const typeConfigKey = (type: string) => `${TEMPLATE_PREFIX}${type}/type.json`;
const versionsPrefix = (type: string, channel: Channel, locale?: string) =>
  `${TEMPLATE_PREFIX}${type}/versions/${variant(channel, locale)}/`;

/** The stored form of a channel template. */
export interface StoredTemplate {
  parts: Record<string, string>;
}

/** A content hash of the parts: the version recorded on each delivery. */
export async function templateVersion(parts: Record<string, string>): Promise<string> {
  return (await sha256Hex(canonicalJson(parts))).slice(0, 16);
}

/** What exists for a type: its channels and, per channel, the locales beside the default. */
export interface TypeCatalog {
  channels: Channel[];
  locales: Partial<Record<Channel, string[]>>;
  hasConfig: boolean;
}

const FILE = /^([a-z]+)(?:\.([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*))?\.json$/;

/** `fr-CA` → [`fr-CA`, `fr`]: the locales to try before the default, most specific first. */
export function localeChain(locale: string | null | undefined): string[] {
  if (!locale) return [];
  const parts = locale.split('-');
  const chain: string[] = [];
  for (let i = parts.length; i > 0; i--) chain.push(parts.slice(0, i).join('-'));
  return chain;
}

/** What one isolate keeps for a minute: settled values only. */
class IsolateCaches {
  readonly templates = new Map<string, Cached<ChannelTemplate | null>>();
  readonly catalogs = new Map<string, Cached<TypeCatalog>>();
  readonly typeConfigs = new Map<string, Cached<TypeConfig>>();
}

/**
 * Reads templates from R2 and keeps them in the isolate for a minute, so a busy consumer reads
 * each template at most once per minute. The settled values are shared by the isolate (module
 * scope); reads still in flight are shared only within one request or queue batch
 * ({@link forRequest}), because a Worker must not await I/O that another request started.
 */
export class TemplatesStore {
  private readonly inflight = new Map<string, Promise<ChannelTemplate | null>>();
  private readonly inflightCatalogs = new Map<string, Promise<TypeCatalog>>();

  constructor(
    private readonly bucket: R2Bucket,
    private readonly now: () => number = Date.now,
    private readonly caches = new IsolateCaches(),
  ) {}

  /** A view for one request: the isolate's settled cache, its own in-flight reads. */
  forRequest(): TemplatesStore {
    return new TemplatesStore(this.bucket, this.now, this.caches);
  }

  private get templates() {
    return this.caches.templates;
  }

  private get catalogs() {
    return this.caches.catalogs;
  }

  private get typeConfigs() {
    return this.caches.typeConfigs;
  }

  /** What exists for a type, from one cached R2 list. */
  async catalog(type: string): Promise<TypeCatalog> {
    const hit = this.catalogs.get(type);
    if (hit && hit.expires > this.now()) return hit.value;
    let pending = this.inflightCatalogs.get(type);
    if (!pending) {
      pending = this.listCatalog(type).finally(() => this.inflightCatalogs.delete(type));
      this.inflightCatalogs.set(type, pending);
    }
    return pending;
  }

  private async listCatalog(type: string): Promise<TypeCatalog> {
    const prefix = `${TEMPLATE_PREFIX}${type}/`;
    const listed = await this.bucket.list({ prefix, delimiter: '/' });
    const channels = new Set<Channel>();
    const locales: Partial<Record<Channel, string[]>> = {};
    let hasConfig = false;
    for (const object of listed.objects) {
      const name = object.key.slice(prefix.length);
      if (name === 'type.json') {
        hasConfig = true;
        continue;
      }
      const match = FILE.exec(name);
      const channel = match?.[1];
      if (!channel || !isChannel(channel)) continue;
      if (match?.[2]) locales[channel] = [...(locales[channel] ?? []), match[2]];
      else channels.add(channel);
    }
    const value = { channels: CHANNELS.filter((c) => channels.has(c)), locales, hasConfig };
    this.catalogs.set(type, { value, expires: this.now() + CACHE_TTL_MS });
    return value;
  }

  /** The channels that have a (default) template for `type`, in Herald's channel order. */
  async channelsOf(type: string): Promise<Channel[]> {
    return (await this.catalog(type)).channels;
  }

  /**
   * The template to render for a recipient's locale: `fr-CA`, then `fr`, then the default.
   * Only variants the catalog lists are read, so a missing locale costs no R2 read.
   */
  async get(type: string, channel: Channel, locale?: string | null): Promise<ChannelTemplate | null> {
    const catalog = await this.catalog(type);
    const available = catalog.locales[channel] ?? [];
    const lower = available.map((l) => l.toLowerCase());
    for (const candidate of localeChain(locale)) {
      const index = lower.indexOf(candidate.toLowerCase());
      const found = index >= 0 ? available[index] : undefined;
      if (found) return this.read(type, channel, found);
    }
    return catalog.channels.includes(channel) ? this.read(type, channel) : null;
  }

  /** Reads one exact variant (no fallback). */
  async read(type: string, channel: Channel, locale?: string): Promise<ChannelTemplate | null> {
    const key = templateKey(type, channel, locale);
    const hit = this.templates.get(key);
    if (hit && hit.expires > this.now()) return hit.value;
    // Concurrent renders of one batch share a single R2 read of a template.
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchTemplate(key, type, channel, locale).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async fetchTemplate(
    key: string,
    type: string,
    channel: Channel,
    locale?: string,
  ): Promise<ChannelTemplate | null> {
    const object = await this.bucket.get(key);
    let value: ChannelTemplate | null = null;
    if (object) {
      const stored = (await object.json()) as StoredTemplate;
      value = {
        type,
        channel,
        parts: stored.parts,
        version: await templateVersion(stored.parts),
        ...(locale ? { locale } : {}),
      };
    }
    this.templates.set(key, { value, expires: this.now() + CACHE_TTL_MS });
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

  async putTypeConfig(type: string, config: TypeConfig): Promise<void> {
    await this.bucket.put(typeConfigKey(type), JSON.stringify(config, null, 2), {
      httpMetadata: { contentType: 'application/json' },
    });
    this.typeConfigs.delete(type);
    this.catalogs.delete(type);
  }

  /** Stores a template as the current one and keeps it as a version. Returns the version. */
  async put(type: string, channel: Channel, parts: Record<string, string>, locale?: string): Promise<string> {
    const version = await templateVersion(parts);
    const body = JSON.stringify({ parts } satisfies StoredTemplate);
    const options = { httpMetadata: { contentType: 'application/json' } };
    await this.bucket.put(`${versionsPrefix(type, channel, locale)}${version}.json`, body, options);
    await this.bucket.put(templateKey(type, channel, locale), body, options);
    this.templates.delete(templateKey(type, channel, locale));
    this.catalogs.delete(type);
    return version;
  }

  /** Removes the current template; its versions stay. Returns whether one existed. */
  async delete(type: string, channel: Channel, locale?: string): Promise<boolean> {
    const key = templateKey(type, channel, locale);
    const existed = (await this.bucket.head(key)) !== null;
    if (existed) await this.bucket.delete(key);
    this.templates.delete(key);
    this.catalogs.delete(type);
    return existed;
  }

  /** Every stored version of a template, newest first. */
  async versions(
    type: string,
    channel: Channel,
    locale?: string,
  ): Promise<{ version: string; storedAt: string }[]> {
    const prefix = versionsPrefix(type, channel, locale);
    const listed = await this.bucket.list({ prefix });
    return listed.objects
      .map((o) => ({
        version: o.key.slice(prefix.length).replace(/\.json$/, ''),
        storedAt: o.uploaded.toISOString(),
      }))
      .sort((a, b) => (a.storedAt < b.storedAt ? 1 : -1));
  }

  /** One stored version's parts (to reproduce a sent message). */
  async version(
    type: string,
    channel: Channel,
    version: string,
    locale?: string,
  ): Promise<Record<string, string> | null> {
    const object = await this.bucket.get(`${versionsPrefix(type, channel, locale)}${version}.json`);
    return object ? ((await object.json()) as StoredTemplate).parts : null;
  }

  /** The notification types that have anything stored. */
  async types(): Promise<string[]> {
    const listed = await this.bucket.list({ prefix: TEMPLATE_PREFIX, delimiter: '/' });
    return listed.delimitedPrefixes.map((p) => p.slice(TEMPLATE_PREFIX.length).replace(/\/$/, '')).sort();
  }
}
