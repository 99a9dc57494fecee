import type { Channel } from '../../domain/channels';
import { AppError, invalidField, notFound } from '../../domain/errors';
import type { RenderedMessage } from '../../domain/message';
import { TEMPLATE_PARTS } from '../../domain/template';
import type { TypeConfig } from '../../domain/type-config';
import type { Services } from '../container';
import { renderTemplate, TemplateError, validateTemplateParts } from './render';

/** Turns a template that does not parse into a 422 naming the part and the line. */
function templateProblem(error: TemplateError): AppError {
  const field = `parts.${error.part}`;
  const where = error.line ? ` (line ${error.line})` : '';
  return new AppError(422, 'template_error', `${field}${where}: ${error.message}`, [
    { field, message: error.message, ...(error.line ? { line: error.line } : {}) },
  ]);
}

/** Validates every part's Liquid, then stores the template and keeps the version. */
export async function putTemplate(
  services: Services,
  type: string,
  channel: Channel,
  parts: Record<string, string>,
  locale?: string,
): Promise<{ type: string; channel: Channel; locale: string | null; version: string }> {
  const allowed = TEMPLATE_PARTS[channel].map((p) => p.name);
  for (const name of Object.keys(parts)) {
    if (!allowed.includes(name))
      throw invalidField(`parts.${name}`, `${channel} templates have ${allowed.join(', ')}`);
  }
  try {
    validateTemplateParts(channel, parts);
  } catch (error) {
    if (error instanceof TemplateError) throw templateProblem(error);
    throw error;
  }
  const version = await services.templates.put(type, channel, parts, locale);
  return { type, channel, locale: locale ?? null, version };
}

/** Renders a type's template for a channel with sample data, exactly as a delivery would be. */
export async function previewTemplate(
  services: Services,
  type: string,
  input: { channel: Channel; data: Record<string, unknown>; locale?: string },
): Promise<{ version: string; locale: string | null; message: RenderedMessage }> {
  const template = await services.templates.get(type, input.channel, input.locale);
  if (!template) throw notFound(`${input.channel} template for ${type}`);
  const recipient = (input.data.recipient as Record<string, unknown> | undefined) ?? {};
  try {
    const message = await renderTemplate(template, {
      ...input.data,
      data: input.data,
      recipient: {
        userId: null,
        email: null,
        phone: null,
        locale: input.locale ?? null,
        timezone: null,
        ...recipient,
      },
      notification: { id: 'preview', type, priority: 'normal' },
      delivery: { id: 'preview', channel: input.channel },
      unsubscribe_url: 'https://example.invalid/u/preview',
    });
    return { version: template.version, locale: template.locale ?? null, message };
  } catch (error) {
    if (error instanceof TemplateError) throw templateProblem(error);
    throw error;
  }
}

/** Every type with its channels, locales and configuration. */
export async function listTemplates(
  services: Services,
): Promise<{ type: string; channels: { channel: Channel; locales: string[] }[]; config: TypeConfig }[]> {
  const types = await services.templates.types();
  return Promise.all(
    types.map(async (type) => {
      const catalog = await services.templates.catalog(type);
      const channels = [
        ...new Set<Channel>([...catalog.channels, ...(Object.keys(catalog.locales) as Channel[])]),
      ];
      return {
        type,
        channels: channels.map((channel) => ({ channel, locales: (catalog.locales[channel] ?? []).sort() })),
        config: await services.templates.typeConfig(type),
      };
    }),
  );
}
