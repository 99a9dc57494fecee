import type { FC } from 'hono/jsx';
import { CHANNELS } from '../../domain/channels';
import type { Metrics, MetricsWindow, VolumeSeries } from '../../services/operations/metrics';
import { ChannelLegend, FunnelChart, VolumeChart } from '../ui/charts';
import { percent, seconds } from '../ui/format';
import { Card, ChannelName, Empty } from '../ui/layout';

const WINDOWS: MetricsWindow[] = ['1h', '6h', '24h', '7d'];

/** Volume over time, the funnel, backlog and dead letters for one window. */
export const OverviewPage: FC<{ metrics: Metrics; series: VolumeSeries; backlogAlertSeconds: number }> = ({
  metrics: m,
  series,
  backlogAlertSeconds,
}) => {
  const failed = CHANNELS.reduce(
    (sum, c) =>
      sum +
      (m.channels[c].byStatus.failed ?? 0) +
      (m.channels[c].byStatus.bounced ?? 0) +
      (m.channels[c].byStatus.complained ?? 0),
    0,
  );
  const total = CHANNELS.reduce((sum, c) => sum + m.channels[c].total, 0);
  return (
    <>
      <h1>Overview</h1>
      <nav class="tabs" aria-label="Window">
        {WINDOWS.map((w) => (
          <a href={`/dashboard?window=${w}`} class={w === m.window ? 'active' : undefined}>
            {`last ${w}`}
          </a>
        ))}
      </nav>
      <div class="cards">
        <Card label="Notifications in" value={m.acceptedInWindow} hint={`last ${m.window}`} />
        <Card label="Deliveries" value={total} hint={`${m.funnel.sent} sent`} />
        <Card
          label="Failed"
          value={failed}
          hint="failed, bounced or complained"
          tone={failed > 0 ? 'bad' : undefined}
        />
        <Card
          label="Backlog now"
          value={m.queuedNow}
          hint={
            m.backlog.oldestQueuedSeconds > 0
              ? `oldest waiting ${seconds(m.backlog.oldestQueuedSeconds)}`
              : m.queuedNow > 0
                ? 'none due yet'
                : 'nothing waiting'
          }
          tone={m.backlog.oldestQueuedSeconds > backlogAlertSeconds ? 'warn' : undefined}
        />
        <Card
          label="Dead letters"
          value={<a href="/dashboard/dead-letters">{m.deadLetters.total}</a>}
          hint="not replayed"
          tone={m.deadLetters.total > 0 ? 'bad' : undefined}
        />
        <Card
          label="Send latency p50"
          value={seconds(m.latency.p50Seconds)}
          hint={`p95 ${seconds(m.latency.p95Seconds)}`}
        />
      </div>
      <div class="grid2">
        <section class="panel">
          <h2>Deliveries per channel</h2>
          <VolumeChart series={series} />
          <ChannelLegend />
        </section>
        <section class="panel">
          <h2>Status funnel</h2>
          {m.funnel.created > 0 ? (
            <FunnelChart funnel={m.funnel} />
          ) : (
            <Empty>No deliveries in this window.</Empty>
          )}
        </section>
      </div>
      <section class="panel">
        <h2>Channels</h2>
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th>Channel</th>
                <th class="num">Deliveries</th>
                <th class="num">Sent</th>
                <th class="num">Failed</th>
                <th class="num">Waiting now</th>
                <th class="num">Dead letters</th>
                <th class="num">Open rate</th>
                <th class="num">Click rate</th>
              </tr>
            </thead>
            <tbody>
              {CHANNELS.map((c) => {
                const ch = m.channels[c];
                return (
                  <tr>
                    <td>
                      <ChannelName channel={c} />
                    </td>
                    <td class="num">{ch.total}</td>
                    <td class="num">{ch.funnel.sent}</td>
                    <td class="num">{ch.byStatus.failed ?? 0}</td>
                    <td class="num">{m.backlog.byChannel[c]}</td>
                    <td class="num">{m.deadLetters.byChannel[c]}</td>
                    <td class="num">{percent(ch.openRate)}</td>
                    <td class="num">{percent(ch.clickRate)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        <p class="muted">
          Open rate (email only): deliveries opened or clicked / deliveries sent. Click rate: deliveries
          clicked / deliveries sent. Counts cover deliveries created in the window; backlog and dead letters
          are as of now.
        </p>
      </section>
    </>
  );
};
