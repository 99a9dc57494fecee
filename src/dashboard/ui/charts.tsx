import type { FC } from 'hono/jsx';
import { CHANNELS } from '../../domain/channels';
import type { Funnel, VolumeSeries } from '../../services/operations/metrics';

const WIDTH = 720;
const HEIGHT = 220;
const LEFT = 56;
const RIGHT = 8;
const TOP = 10;
const BOTTOM = 26;

/** A round axis maximum at or above `max`: 1, 2, 5 × 10ⁿ. */
function niceMax(max: number): number {
  if (max <= 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= max) return step * magnitude;
  return 10 * magnitude;
}

function bucketLabel(startMs: number, bucketSeconds: number): string {
  const iso = new Date(startMs).toISOString();
  return bucketSeconds >= 6 * 3600 ? `${iso.slice(5, 10)} ${iso.slice(11, 13)}h` : iso.slice(11, 16);
}

/** Deliveries created per channel over time, as stacked bars (server-rendered SVG, no script). */
export const VolumeChart: FC<{ series: VolumeSeries }> = ({ series }) => {
  const totals = series.buckets.map((b) => CHANNELS.reduce((sum, c) => sum + b.counts[c], 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotWidth = WIDTH - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = plotWidth / Math.max(1, series.buckets.length);
  const barWidth = Math.max(2, slot * 0.72);
  const y = (value: number) => TOP + plotHeight - (value / max) * plotHeight;
  const labelEvery = Math.ceil(series.buckets.length / 8);
  return (
    <svg
      class="chart"
      viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
      role="img"
      aria-label="Deliveries created per channel over time"
    >
      {[0, 0.5, 1].map((f) => (
        <g>
          <line class="grid" x1={LEFT} x2={WIDTH - RIGHT} y1={y(max * f)} y2={y(max * f)} />
          <text x={LEFT - 6} y={y(max * f) + 4} text-anchor="end">
            {String(Math.round(max * f * 10) / 10)}
          </text>
        </g>
      ))}
      {series.buckets.map((bucket, i) => {
        const x = LEFT + i * slot + (slot - barWidth) / 2;
        let base = 0;
        return (
          <g>
            {CHANNELS.filter((c) => bucket.counts[c] > 0).map((c) => {
              const count = bucket.counts[c];
              const top = y(base + count);
              const height = y(base) - top;
              base += count;
              return (
                <rect class={`ch-${c}`} x={x} y={top} width={barWidth} height={Math.max(0.5, height)}>
                  <title>{`${bucketLabel(bucket.startMs, series.bucketSeconds)} · ${c}: ${count}`}</title>
                </rect>
              );
            })}
            {i % labelEvery === 0 ? (
              <text x={x + barWidth / 2} y={HEIGHT - 8} text-anchor="middle">
                {bucketLabel(bucket.startMs, series.bucketSeconds)}
              </text>
            ) : null}
          </g>
        );
      })}
    </svg>
  );
};

export const ChannelLegend: FC = () => (
  <div class="legend">
    {CHANNELS.map((c) => (
      <span>
        <span class={`channel ch-${c}`} />
        {c}
      </span>
    ))}
  </div>
);

const STAGES: (keyof Funnel)[] = ['created', 'queued', 'sent', 'delivered', 'opened', 'clicked'];

/** The status funnel as horizontal bars, each stage as a share of `created`. */
export const FunnelChart: FC<{ funnel: Funnel }> = ({ funnel }) => {
  const rowHeight = 28;
  const labelWidth = 96;
  const valueWidth = 110;
  const barSpace = WIDTH - labelWidth - valueWidth;
  const height = STAGES.length * rowHeight + 4;
  const base = Math.max(1, funnel.created);
  return (
    <svg
      class="chart"
      viewBox={`0 0 ${WIDTH} ${height}`}
      role="img"
      aria-label="Status funnel: created, queued, sent, delivered, opened, clicked"
    >
      {STAGES.map((stage, i) => {
        const value = funnel[stage];
        const share = value / base;
        const y = i * rowHeight + 4;
        return (
          <g>
            <text x={labelWidth - 8} y={y + 15} text-anchor="end">
              {stage}
            </text>
            <rect
              class="stage"
              x={labelWidth}
              y={y}
              width={Math.max(1, share * barSpace)}
              height={rowHeight - 8}
              rx={3}
            >
              <title>{`${stage}: ${value}`}</title>
            </rect>
            <text x={labelWidth + Math.max(1, share * barSpace) + 8} y={y + 15}>
              {`${value}${funnel.created > 0 ? ` (${Math.round(share * 1000) / 10}%)` : ''}`}
            </text>
          </g>
        );
      })}
    </svg>
  );
};
