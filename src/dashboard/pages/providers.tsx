import type { FC } from 'hono/jsx';
import { CHANNELS } from '../../domain/channels';
import type { ProviderStatus } from '../../services/operations/provider-status';
import { ChannelName } from '../ui/layout';

const ProviderRow: FC<{ provider: ProviderStatus }> = ({ provider: p }) => (
  <tr>
    <td>
      {p.name}
      {p.platforms.some((platform) => platform !== p.name) ? (
        <span class="muted">{` (${p.platforms.join(', ')})`}</span>
      ) : null}
    </td>
    <td>{p.listed ? `#${p.order}` : <span class="muted">no</span>}</td>
    <td>
      {p.credentials === 'ok' ? (
        <span class="badge on">ok</span>
      ) : p.listed ? (
        <span class="badge off">{p.credentials}</span>
      ) : (
        <span class="muted">–</span>
      )}
    </td>
    <td>
      <span class={p.circuit === 'closed' ? 'badge neutral' : 'badge off'}>{p.circuit}</span>
    </td>
    <td class="nowrap">
      <form class="inline" method="post" action={`/dashboard/providers/${encodeURIComponent(p.name)}`}>
        <input type="hidden" name="enabled" value={p.enabled ? 'off' : 'on'} />
        <span class={p.enabled ? 'badge on' : 'badge off'}>{p.enabled ? 'on' : 'off'}</span>{' '}
        <button type="submit" class="small secondary">
          {p.enabled ? 'Switch off' : 'Switch on'}
        </button>
      </form>
    </td>
  </tr>
);

/** Providers per channel with an on/off switch each; listed ones first, in failover order. */
export const ProvidersPage: FC<{ providers: ProviderStatus[] }> = ({ providers }) => (
  <>
    <h1>Providers</h1>
    <p class="muted">
      A channel tries its listed providers in order. Switching one off takes effect in every isolate within 10
      seconds, without a deploy. The circuit state is this isolate's.
    </p>
    {CHANNELS.map((channel) => (
      <section class="panel">
        <h2>
          <ChannelName channel={channel} />
        </h2>
        <div class="scroll">
          <table class="providers">
            <thead>
              <tr>
                <th>Provider</th>
                <th>Listed</th>
                <th>Credentials</th>
                <th>Circuit</th>
                <th>Switch</th>
              </tr>
            </thead>
            <tbody>
              {providers
                .filter((p) => p.channel === channel)
                .sort((a, b) => (a.order ?? 99) - (b.order ?? 99) || a.name.localeCompare(b.name))
                .map((p) => (
                  <ProviderRow provider={p} />
                ))}
            </tbody>
          </table>
        </div>
      </section>
    ))}
  </>
);
