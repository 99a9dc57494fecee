import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import { STYLESHEET } from './styles';

export type Section = 'overview' | 'notifications' | 'dead-letters' | 'providers' | 'outbox';

const SECTIONS: { id: Section; href: string; label: string }[] = [
  { id: 'overview', href: '/dashboard', label: 'Overview' },
  { id: 'notifications', href: '/dashboard/notifications', label: 'Notifications' },
  { id: 'dead-letters', href: '/dashboard/dead-letters', label: 'Dead letters' },
  { id: 'providers', href: '/dashboard/providers', label: 'Providers' },
  { id: 'outbox', href: '/dashboard/outbox', label: 'Outbox' },
];

interface DocumentProps {
  title: string;
  nonce: string;
}

/**
 * The HTML document. The stylesheet is a constant, inserted unescaped because CSS is not HTML
 * text; nothing else on any page bypasses JSX escaping.
 */
export const Document: FC<PropsWithChildren<DocumentProps>> = ({ title, nonce, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      {/* Not no-referrer (the app-wide header): under it a form POST's Origin is "null", and the CSRF check needs it. */}
      <meta name="referrer" content="same-origin" />
      <meta name="robots" content="noindex" />
      <title>{`${title} · Herald`}</title>
      <link rel="icon" href="data:," />
      <style nonce={nonce} dangerouslySetInnerHTML={{ __html: STYLESHEET }} />
    </head>
    <body>{children}</body>
  </html>
);

interface LayoutProps extends DocumentProps {
  section: Section;
  /** The outbox link shows only while a channel uses the sandbox provider. */
  sandbox: boolean;
  flash?: { kind: 'ok' | 'error'; text: string };
}

/** A signed-in page: the nav bar, an optional flash message, the content. */
export const Layout: FC<PropsWithChildren<LayoutProps>> = ({
  title,
  nonce,
  section,
  sandbox,
  flash,
  children,
}) => (
  <Document title={title} nonce={nonce}>
    <header class="nav">
      <div class="inner">
        <span class="brand">Herald</span>
        {SECTIONS.filter((s) => s.id !== 'outbox' || sandbox).map((s) => (
          <a href={s.href} class={s.id === section ? 'active' : undefined}>
            {s.label}
          </a>
        ))}
        <form class="inline" method="post" action="/dashboard/logout">
          <button class="small" type="submit">
            Log out
          </button>
        </form>
      </div>
    </header>
    <main>
      {flash ? <div class={flash.kind === 'error' ? 'flash error' : 'flash'}>{flash.text}</div> : null}
      {children}
    </main>
  </Document>
);

/** A status as a coloured badge. */
export const StatusBadge: FC<{ status: string }> = ({ status }) => (
  <span class={`badge s-${/^[a-z_]+$/.test(status) ? status : 'unknown'}`}>{status}</span>
);

export const ChannelName: FC<{ channel: string }> = ({ channel }) => (
  <span>
    <span class={`channel ch-${/^[a-z]+$/.test(channel) ? channel : 'unknown'}`} />
    {channel}
  </span>
);

/** `2026-11-28T10:00:01.234Z` as `2026-11-28 10:00:01 UTC`, with the exact time kept in `datetime`. */
export const Time: FC<{ at: string | null | undefined }> = ({ at }) =>
  at ? (
    <time datetime={at} title={at}>
      {`${at.slice(0, 10)} ${at.slice(11, 19)} UTC`}
    </time>
  ) : (
    <span class="muted">–</span>
  );

export const Card: FC<{ label: string; value: Child; hint?: Child; tone?: 'warn' | 'bad' }> = ({
  label,
  value,
  hint,
  tone,
}) => (
  <div class={tone ? `card ${tone}` : 'card'}>
    <div class="label">{label}</div>
    <div class="value">{value}</div>
    {hint !== undefined ? <div class="hint">{hint}</div> : null}
  </div>
);

export const Empty: FC<PropsWithChildren> = ({ children }) => <p class="muted">{children}</p>;

/** A list page's table: its headings over the rows, or what to say when there are none. */
export const Table: FC<PropsWithChildren<{ headings: readonly string[]; count: number; empty: string }>> = ({
  headings,
  count,
  empty,
  children,
}) =>
  count === 0 ? (
    <Empty>{empty}</Empty>
  ) : (
    <div class="scroll">
      <table>
        <thead>
          <tr>
            {headings.map((heading) => (
              <th>{heading}</th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
