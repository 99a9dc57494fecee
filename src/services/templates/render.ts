import { Liquid, type Template } from 'liquidjs';
import type { Channel } from '../../domain/channels';
import type { RenderedMessage } from '../../domain/message';
import { type ChannelTemplate, TEMPLATE_PARTS } from '../../domain/template';

/**
 * Two engines: one escapes every output (HTML parts), one leaves text alone (subject, SMS, push,
 * chat, JSON). Both see only the render context's own properties and have no file system, so a
 * template cannot include files or reach prototypes.
 */
const baseOptions = {
  strictFilters: true,
  ownPropertyOnly: true,
  templates: {},
  jsTruthy: false,
  greedy: false,
} as const;
const htmlEngine = new Liquid({ ...baseOptions, outputEscape: 'escape' });
const textEngine = new Liquid(baseOptions);

const PARSE_CACHE_LIMIT = 500;
const parsed = new Map<string, Template[]>();

function parse(engine: Liquid, source: string, cacheKey: string): Template[] {
  const hit = parsed.get(cacheKey);
  if (hit) return hit;
  const templates = engine.parse(source);
  if (parsed.size >= PARSE_CACHE_LIMIT) parsed.delete(parsed.keys().next().value as string);
  parsed.set(cacheKey, templates);
  return templates;
}

/** A template that fails to parse: names the part and the line, for a 422 or a delivery reason. */
export class TemplateError extends Error {
  constructor(
    readonly part: string,
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

function describeLiquidError(part: string, error: unknown): TemplateError {
  const err = error as { message?: string; token?: { getPosition?: () => [number, number] } };
  const line = err.token?.getPosition?.()[0];
  const message = (err.message ?? String(error)).split('\n')[0] ?? 'invalid template';
  return new TemplateError(part, message, line);
}

/** Tags that would read another template file; there is no file system, so they can only fail. */
const FILE_TAGS = /\{%-?\s*(include|render|layout)\b/;

/** Checks that every part parses; throws TemplateError naming the part and line. */
export function validateTemplateParts(channel: Channel, parts: Record<string, string>): void {
  for (const spec of TEMPLATE_PARTS[channel]) {
    const source = parts[spec.name];
    if (source === undefined) {
      if (spec.required) throw new TemplateError(spec.name, `part "${spec.name}" is required for ${channel}`);
      continue;
    }
    const fileTag = FILE_TAGS.exec(source);
    if (fileTag) {
      const line = source.slice(0, fileTag.index).split('\n').length;
      throw new TemplateError(
        spec.name,
        `{% ${fileTag[1]} %} is not available: templates cannot read other files`,
        line,
      );
    }
    try {
      (spec.html ? htmlEngine : textEngine).parse(source);
    } catch (error) {
      throw describeLiquidError(spec.name, error);
    }
  }
}

/** Renders every part of a channel template into the message a provider sends. */
export async function renderTemplate(
  template: ChannelTemplate,
  context: Record<string, unknown>,
): Promise<RenderedMessage> {
  const out: Record<string, string> = {};
  for (const spec of TEMPLATE_PARTS[template.channel]) {
    const source = template.parts[spec.name];
    if (source === undefined) continue;
    const engine = spec.html ? htmlEngine : textEngine;
    try {
      const compiled = parse(
        engine,
        source,
        `${template.version}:${spec.html}:${spec.name}:${source.length}`,
      );
      out[spec.name] = (await engine.render(compiled, context)).trim();
    } catch (error) {
      throw describeLiquidError(spec.name, error);
    }
  }
  return toMessage(template.channel, out);
}

function toMessage(channel: Channel, parts: Record<string, string>): RenderedMessage {
  switch (channel) {
    case 'email':
      return { subject: parts.subject, text: parts.text, ...(parts.html ? { html: parts.html } : {}) };
    case 'sms':
    case 'chat':
      return { text: parts.text };
    case 'push':
      return { title: parts.title, body: parts.body };
    case 'webhook': {
      try {
        return { json: JSON.parse(parts.json ?? '') };
      } catch {
        throw new TemplateError('json', 'webhook template did not render valid JSON');
      }
    }
  }
}
