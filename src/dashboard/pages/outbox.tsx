import type { FC } from 'hono/jsx';
import { CHANNELS, type Channel } from '../../domain/channels';
import type { OutboxEntry } from '../../storage/outbox-repo';
import { describeAddress } from '../ui/format';
import { ChannelName, Table, Time } from '../ui/layout';

function preview(entry: OutboxEntry): string {
  const m = entry.message;
  const text =
    m.subject ?? m.title ?? m.text ?? m.body ?? (m.json === undefined ? '' : JSON.stringify(m.json));
  return text.length > 140 ? `${text.slice(0, 140)}…` : text;
}

/** The latest messages the sandbox provider captured instead of sending. */
export const OutboxPage: FC<{ entries: OutboxEntry[]; channel?: Channel }> = ({ entries, channel }) => (
  <>
    <h1>Outbox</h1>
    <p class="muted">
      Sandbox mode: what Herald would have sent, exactly as rendered. Newest first. A{' '}
      <span class="badge neutral">repeat</span> went out again with the same idempotency key, which a real
      provider drops.
    </p>
    <nav class="tabs" aria-label="Channel">
      <a href="/dashboard/outbox" class={channel === undefined ? 'active' : undefined}>
        all
      </a>
      {CHANNELS.map((c) => (
        <a href={`/dashboard/outbox?channel=${c}`} class={c === channel ? 'active' : undefined}>
          {c}
        </a>
      ))}
    </nav>
    <section class="panel">
      <Table
        headings={['Captured', 'Channel', 'To', 'Message', 'Notification']}
        count={entries.length}
        empty="Nothing captured yet."
      >
        {entries.map((e) => (
          <tr>
            <td>
              <Time at={e.createdAt} />
            </td>
            <td>
              <ChannelName channel={e.channel} />
            </td>
            <td class="mono">{describeAddress(e.address)}</td>
            <td>
              {e.idempotentRepeat ? (
                <>
                  <span
                    class="badge neutral"
                    title="Sent again with the same idempotency key: a real provider would have dropped it"
                  >
                    repeat
                  </span>{' '}
                </>
              ) : null}
              {preview(e)}
            </td>
            <td class="mono">
              <a href={`/dashboard/notifications/${encodeURIComponent(e.notificationId)}#${e.deliveryId}`}>
                {e.notificationId}
              </a>
            </td>
          </tr>
        ))}
      </Table>
    </section>
  </>
);
