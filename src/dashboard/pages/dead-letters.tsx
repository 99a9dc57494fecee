import type { FC } from 'hono/jsx';
import { CHANNELS, type Channel } from '../../domain/channels';
import type { DeadLetter } from '../../storage/operations-repo';
import { ChannelName, Empty, Time } from '../ui/layout';

export interface DeadLetterRow extends DeadLetter {
  notificationId: string | null;
  userId: string | null;
}

/** Dead letters per channel, each replayable, plus "replay all of a channel". */
export const DeadLettersPage: FC<{
  rows: DeadLetterRow[];
  counts: Record<Channel, number>;
  channel?: Channel;
}> = ({ rows, counts, channel }) => (
  <>
    <h1>Dead letters</h1>
    <p class="muted">
      Deliveries whose attempts were spent. Replaying one gives it fresh attempts and puts it back on its
      queue.
    </p>
    <nav class="tabs" aria-label="Channel">
      <a href="/dashboard/dead-letters" class={channel === undefined ? 'active' : undefined}>
        all
      </a>
      {CHANNELS.map((c) => (
        <a href={`/dashboard/dead-letters?channel=${c}`} class={c === channel ? 'active' : undefined}>
          {`${c} (${counts[c]})`}
        </a>
      ))}
    </nav>
    <section class="panel">
      <div class="tabs">
        {CHANNELS.filter((c) => counts[c] > 0 && (channel === undefined || c === channel)).map((c) => (
          <form class="inline" method="post" action="/dashboard/dead-letters/replay">
            <input type="hidden" name="channel" value={c} />
            <button type="submit" class="danger">{`Replay all ${counts[c]} ${c}`}</button>
          </form>
        ))}
      </div>
      {rows.length === 0 ? (
        <Empty>No dead letters waiting.</Empty>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th>Dead-lettered</th>
                <th>Channel</th>
                <th>Delivery</th>
                <th>Recipient</th>
                <th>Last error</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr>
                  <td>
                    <Time at={r.createdAt} />
                  </td>
                  <td>
                    <ChannelName channel={r.channel} />
                  </td>
                  <td class="mono">
                    {r.notificationId ? (
                      <a
                        href={`/dashboard/notifications/${encodeURIComponent(r.notificationId)}#${r.deliveryId}`}
                      >
                        {r.deliveryId}
                      </a>
                    ) : (
                      r.deliveryId
                    )}
                  </td>
                  <td class="mono">{r.userId ?? ''}</td>
                  <td>{r.reason ?? ''}</td>
                  <td>
                    <form class="inline" method="post" action="/dashboard/dead-letters/replay">
                      <input type="hidden" name="id" value={r.deliveryId} />
                      <button type="submit" class="small">
                        Replay
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  </>
);
