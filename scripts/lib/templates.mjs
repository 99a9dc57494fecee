// Reads the repository's templates/ folder into the R2 objects Herald reads:
// templates/<type>/<channel>/<part>.liquid  ->  key `templates/<type>/<channel>.json`, body { parts }.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

const CHANNELS = ['email', 'sms', 'push', 'chat', 'webhook', 'inapp'];

/** @returns {Promise<{ key: string, body: string }[]>} */
export async function readTemplates(root) {
  const objects = [];
  for (const type of (await readdir(root)).sort()) {
    const typeDir = join(root, type);
    if (!(await stat(typeDir)).isDirectory()) continue;
    for (const entry of (await readdir(typeDir)).sort()) {
      const channelDir = join(typeDir, entry);
      if (entry === 'type.json') {
        const config = await readFile(channelDir, 'utf8');
        JSON.parse(config); // a broken file fails here, before anything is uploaded
        objects.push({ key: `templates/${type}/type.json`, body: config });
        continue;
      }
      if (!(await stat(channelDir)).isDirectory()) continue;
      if (!CHANNELS.includes(entry))
        throw new Error(`${channelDir}: "${entry}" is not a channel (${CHANNELS.join(', ')})`);
      // `subject.liquid` is the default; `subject.fr-CA.liquid` the fr-CA variant of that part.
      const byLocale = new Map();
      for (const file of (await readdir(channelDir)).sort()) {
        const match = /^([a-z]+)(?:\.([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*))?\.liquid$/.exec(file);
        if (!match) continue;
        const locale = match[2] ?? '';
        const parts = byLocale.get(locale) ?? {};
        parts[match[1]] = await readFile(join(channelDir, file), 'utf8');
        byLocale.set(locale, parts);
      }
      for (const [locale, parts] of byLocale) {
        const name = locale ? `${entry}.${locale}` : entry;
        objects.push({ key: `templates/${type}/${name}.json`, body: JSON.stringify({ parts }) });
      }
    }
  }
  return objects;
}

/** Puts the templates into the local R2 bucket that `wrangler dev` uses (.wrangler/state). */
export async function uploadTemplatesLocally(root, configPath = 'wrangler.toml') {
  const { getPlatformProxy } = await import('wrangler');
  const proxy = await getPlatformProxy({ configPath, persist: true });
  try {
    const objects = await readTemplates(join(root, 'templates'));
    for (const { key, body } of objects) {
      await proxy.env.TEMPLATES.put(key, body, { httpMetadata: { contentType: 'application/json' } });
    }
    return objects.length;
  } finally {
    await proxy.dispose();
  }
}
