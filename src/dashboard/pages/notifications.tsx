import type { FC } from 'hono/jsx';
import { CHANNELS } from '../../domain/channels';
import type { Delivery, Notification } from '../../domain/delivery';
import { STATUSES } from '../../domain/status';
import { StatusBadge, Table, Time } from '../ui/layout';

export interface NotificationFilters {
  userId?: string;
  type?: string;
  status?: string;
  channel?: string;
}

interface Props {
  filters: NotificationFilters;
  rows: { notification: Notification; deliveries: Delivery[] }[];
  /** Query string of the next (older) page, or null on the last page. */
  olderHref: string | null;
  error?: string;
}

const Select: FC<{ name: string; label: string; options: readonly string[]; value?: string }> = ({
  name,
  label,
  options,
  value,
}) => (
  <label>
    {label}
    <select name={name}>
      <option value="">any</option>
      {options.map((o) => (
        <option value={o} selected={o === value}>
          {o}
        </option>
      ))}
    </select>
  </label>
);

/** Search notifications by user, type, status and channel, newest first. */
export const NotificationsPage: FC<Props> = ({ filters, rows, olderHref, error }) => (
  <>
    <h1>Notifications</h1>
    <section class="panel">
      <form class="filters" method="get" action="/dashboard/notifications">
        <label>
          User id
          <input name="userId" value={filters.userId ?? ''} placeholder="user_123" />
        </label>
        <label>
          Type
          <input name="type" value={filters.type ?? ''} placeholder="payment_reminder" />
        </label>
        <Select name="status" label="Delivery status" options={STATUSES} value={filters.status} />
        <Select name="channel" label="Channel" options={CHANNELS} value={filters.channel} />
        <button type="submit">Search</button>
        <a href="/dashboard/notifications">Clear</a>
      </form>
    </section>
    {error ? <div class="flash error">{error}</div> : null}
    <section class="panel">
      <Table
        headings={['Created', 'Notification', 'Type', 'Recipients', 'Deliveries']}
        count={rows.length}
        empty="No notification matches."
      >
        {rows.map(({ notification: n, deliveries }) => (
          <tr>
            <td>
              <Time at={n.createdAt} />
            </td>
            <td class="mono">
              <a href={`/dashboard/notifications/${encodeURIComponent(n.id)}`}>{n.id}</a>
            </td>
            <td>{n.type}</td>
            <td class="mono">
              {[...new Set(deliveries.map((d) => d.userId ?? 'inline'))].slice(0, 3).join(', ')}
            </td>
            <td>
              {deliveries.map((d) => (
                <span>
                  {`${d.channel} `}
                  <StatusBadge status={d.status} />{' '}
                </span>
              ))}
            </td>
          </tr>
        ))}
      </Table>
      {olderHref ? (
        <div class="pager">
          <a href={olderHref}>Older →</a>
        </div>
      ) : null}
    </section>
  </>
);
