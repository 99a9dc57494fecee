import type { FC } from 'hono/jsx';
import type { Delivery, Notification } from '../../domain/delivery';
import type { InboxItem } from '../../domain/inbox';
import type { DigestView } from '../../services/operations/digest-admin';
import type { OutboxEntry } from '../../storage/outbox-repo';
import { describeAddress, elapsed } from '../ui/format';
import { ChannelName, Empty, StatusBadge, Time } from '../ui/layout';
import { InboxItemFacts } from './inbox';

const MessageView: FC<{ entry: OutboxEntry }> = ({ entry }) => {
  const m = entry.message;
  return (
    <div>
      <h3>
        Rendered message{' '}
        <span class="muted">
          (captured by the sandbox <Time at={entry.createdAt} />)
        </span>
      </h3>
      <dl class="facts">
        {m.subject !== undefined ? (
          <>
            <dt>Subject</dt>
            <dd>{m.subject}</dd>
          </>
        ) : null}
        {m.title !== undefined ? (
          <>
            <dt>Title</dt>
            <dd>{m.title}</dd>
          </>
        ) : null}
        {m.body !== undefined ? (
          <>
            <dt>Body</dt>
            <dd>{m.body}</dd>
          </>
        ) : null}
        {m.url !== undefined ? (
          <>
            <dt>URL</dt>
            <dd class="mono">{m.url}</dd>
          </>
        ) : null}
      </dl>
      {m.text !== undefined ? <pre>{m.text}</pre> : null}
      {m.html !== undefined ? (
        <details>
          <summary>HTML source</summary>
          <pre>{m.html}</pre>
        </details>
      ) : null}
      {m.json !== undefined ? <pre>{JSON.stringify(m.json, null, 2)}</pre> : null}
    </div>
  );
};

const DeliveryView: FC<{
  delivery: Delivery;
  captured: OutboxEntry | undefined;
  inboxItem: InboxItem | undefined;
  digest: DigestView | undefined;
}> = ({ delivery: d, captured, inboxItem, digest }) => (
  <div class="delivery" id={d.id}>
    <h2>
      <ChannelName channel={d.channel} /> <StatusBadge status={d.status} />
    </h2>
    <dl class="facts">
      <dt>Delivery</dt>
      <dd class="mono">{d.id}</dd>
      <dt>Recipient</dt>
      <dd>
        {d.userId ? (
          <a href={`/dashboard/users/${encodeURIComponent(d.userId)}`}>{d.userId}</a>
        ) : (
          'inline recipient'
        )}
      </dd>
      <dt>Address</dt>
      <dd class="mono">{describeAddress(d.address)}</dd>
      <dt>Attempts</dt>
      <dd>{d.attempts}</dd>
      <dt>Provider</dt>
      <dd>
        {d.provider ?? '–'}
        {d.providerMessageId ? <span class="muted mono">{` (${d.providerMessageId})`}</span> : null}
      </dd>
      {d.reason ? (
        <>
          <dt>Reason</dt>
          <dd>{d.reason}</dd>
        </>
      ) : null}
      {d.templateVersion ? (
        <>
          <dt>Template</dt>
          <dd class="mono">{d.templateVersion}</dd>
        </>
      ) : null}
    </dl>
    <div class="scroll">
      <table>
        <thead>
          <tr>
            <th>Time</th>
            <th />
            <th>Status</th>
            <th>Provider</th>
            <th>Reason</th>
          </tr>
        </thead>
        <tbody>
          {d.history.map((entry, i) => (
            <tr>
              <td>
                <Time at={entry.at} />
              </td>
              <td class="muted">{i === 0 ? '' : elapsed(d.history[0]?.at ?? entry.at, entry.at)}</td>
              <td>
                <StatusBadge status={entry.status} />
              </td>
              <td>{entry.provider ?? ''}</td>
              <td>{entry.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    {captured ? <MessageView entry={captured} /> : null}
    {inboxItem ? <InboxItemFacts item={inboxItem} /> : null}
    {digest ? (
      <p class="digest">
        Held in an open digest ({digest.type}, {digest.channel}
        {digest.key ? `, key ${digest.key}` : ''}): {digest.count} items, goes out at{' '}
        <Time at={digest.closesAt} />.
      </p>
    ) : null}
  </div>
);

/** One notification: its fields and every delivery's full timeline. */
export const NotificationPage: FC<{
  notification: Notification;
  deliveries: Delivery[];
  captured: Map<string, OutboxEntry>;
  /** The inbox items of the in-app deliveries, by delivery id. */
  inboxItems: Map<string, InboxItem>;
  /** The open digests holding deliveries of this notification, by delivery id. */
  digests: Map<string, DigestView>;
}> = ({ notification: n, deliveries, captured, inboxItems, digests }) => (
  <>
    <h1 class="mono">{n.id}</h1>
    <p>
      <a href={`/dashboard/notifications/${encodeURIComponent(n.id)}`}>Refresh</a>
      {' · '}
      <a href="/dashboard/notifications">All notifications</a>
    </p>
    <section class="panel">
      <dl class="facts">
        <dt>Type</dt>
        <dd>{n.type}</dd>
        <dt>Priority</dt>
        <dd>{n.priority}</dd>
        <dt>Source</dt>
        <dd>{n.source ?? '–'}</dd>
        <dt>Created</dt>
        <dd>
          <Time at={n.createdAt} />
        </dd>
        {n.sendAt ? (
          <>
            <dt>Send at</dt>
            <dd>
              <Time at={n.sendAt} />
            </dd>
          </>
        ) : null}
        <dt>Channels asked</dt>
        <dd>{n.channels ? n.channels.join(', ') : 'every channel with a template'}</dd>
      </dl>
      <details>
        <summary>Template data</summary>
        <pre>{JSON.stringify(n.data, null, 2)}</pre>
      </details>
    </section>
    <section class="panel">
      {deliveries.length === 0 ? (
        <Empty>No deliveries.</Empty>
      ) : (
        deliveries.map((d) => (
          <DeliveryView
            delivery={d}
            captured={captured.get(d.id)}
            inboxItem={inboxItems.get(d.id)}
            digest={digests.get(d.id)}
          />
        ))
      )}
    </section>
  </>
);
