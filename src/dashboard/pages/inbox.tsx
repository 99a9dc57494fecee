import type { FC } from 'hono/jsx';
import type { InboxCounts, InboxItem } from '../../domain/inbox';
import { Table, Time } from '../ui/layout';

/** An inbox item's state, in words: archived, read, seen or new. */
function stateOf(item: InboxItem): string {
  if (item.archivedAt) return 'archived';
  if (item.readAt) return 'read';
  if (item.seenAt) return 'seen';
  return 'new';
}

/** The item a delivery put in the user's inbox, as the user's app shows it now. */
export const InboxItemFacts: FC<{ item: InboxItem }> = ({ item }) => (
  <div>
    <h3>
      Inbox item <span class="muted mono">{item.id}</span> <span class="badge">{stateOf(item)}</span>
    </h3>
    <dl class="facts">
      <dt>Title</dt>
      <dd>{item.title}</dd>
      <dt>Body</dt>
      <dd>{item.body}</dd>
      {item.url ? (
        <>
          <dt>URL</dt>
          <dd class="mono">{item.url}</dd>
        </>
      ) : null}
      {item.actions.length > 0 ? (
        <>
          <dt>Actions</dt>
          <dd>{item.actions.map((a) => `${a.label} → ${a.url}`).join(' · ')}</dd>
        </>
      ) : null}
      <dt>Seen</dt>
      <dd>
        <Time at={item.seenAt} />
      </dd>
      <dt>Read</dt>
      <dd>
        <Time at={item.readAt} />
      </dd>
      <dt>Archived</dt>
      <dd>
        <Time at={item.archivedAt} />
      </dd>
    </dl>
  </div>
);

/** A user: their inbox (every item, newest first, archived ones too) and where to find the rest. */
export const UserPage: FC<{
  userId: string;
  items: InboxItem[];
  counts: InboxCounts;
  olderHref: string | null;
}> = ({ userId, items, counts, olderHref }) => (
  <>
    <h1 class="mono">{userId}</h1>
    <p>
      <a href={`/dashboard/notifications?${new URLSearchParams({ userId })}`}>Their notifications</a>
    </p>
    <section class="panel">
      <h2>
        Inbox{' '}
        <span class="muted">
          {counts.total} items, {counts.unread} unread, {counts.unseen} unseen (archived items not counted)
        </span>
      </h2>
      <Table
        headings={['Time', 'State', 'Title', 'Body', 'Notification']}
        count={items.length}
        empty="Nothing in this user's inbox."
      >
        {items.map((item) => (
          <tr class="inbox-item">
            <td>
              <Time at={item.createdAt} />
            </td>
            <td>
              <span class="badge">{stateOf(item)}</span>
            </td>
            <td>{item.title}</td>
            <td>{item.body}</td>
            <td class="mono">
              <a href={`/dashboard/notifications/${encodeURIComponent(item.notificationId)}`}>
                {item.notificationId}
              </a>
            </td>
          </tr>
        ))}
      </Table>
      {olderHref ? (
        <p>
          <a href={olderHref}>Older items</a>
        </p>
      ) : null}
    </section>
  </>
);
