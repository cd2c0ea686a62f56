import { useState } from 'preact/hooks';
import { type Gateway, mutate, useQuery, useSubscription } from './client.js';
import { num, when } from './format.js';

interface Live {
  id: string;
  apiKeyName: string;
  apiKeyPrefix: string;
  model: string;
  kind: string;
  phase: 'QUEUED' | 'LOADING_MODEL' | 'GENERATING';
  queuePosition: number | null;
  completionTokens: number;
  tokensPerSecond: number | null;
  startedAt: string;
}
interface ModelEvent {
  at: string;
  type: string;
  reason: string;
  model: string;
  host: string | null;
}
interface HostHealth {
  url: string;
  healthy: boolean;
  activeRequests: number;
  error: string | null;
  checkedAt: string | null;
}

const LIVE = 'subscription AdminLive { liveGenerations { id apiKeyName apiKeyPrefix model kind phase queuePosition completionTokens tokensPerSecond startedAt } }';
const HEALTH = 'query AdminHealth { health { status database upstream version } ollamaHosts { url healthy activeRequests error checkedAt } }';

function Running({ gw }: { gw: Gateway }) {
  const [running, setRunning] = useState<Live[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const error = useSubscription<{ liveGenerations: Live[] }>(gw, LIVE, {}, (d) => setRunning(d.liveGenerations));
  const cancel = async (id: string) => {
    setMessage(null);
    try {
      await mutate(gw, 'mutation AdminCancel($id: ID!) { cancelGeneration(id: $id) }', { id });
      setMessage(`Cancelled ${id.slice(0, 8)}.`);
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  return (
    <div class="card">
      <h3>Running generations</h3>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <table aria-label="Running generations">
        <thead>
          <tr>
            <th>Started</th>
            <th>Key</th>
            <th>Model</th>
            <th>Phase</th>
            <th>Tokens</th>
            <th>Tokens/s</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {running.map((g) => (
            <tr key={g.id} data-generation={g.id}>
              <td>{when(g.startedAt)}</td>
              <td>
                {g.apiKeyName} <code>{g.apiKeyPrefix}…</code>
              </td>
              <td>
                {g.model} <span class="hint">{g.kind}</span>
              </td>
              <td>
                <span class={`phase ${g.phase.toLowerCase()}`}>{g.phase === 'QUEUED' ? `QUEUED #${g.queuePosition}` : g.phase}</span>
              </td>
              <td class="n">{num(g.completionTokens)}</td>
              <td class="n">{g.tokensPerSecond === null ? '—' : g.tokensPerSecond.toFixed(1)}</td>
              <td>
                <button type="button" class="danger" onClick={() => cancel(g.id)}>
                  Cancel
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {running.length === 0 && <p class="hint">Nothing is running.</p>}
      {message && <p role="status">{message}</p>}
    </div>
  );
}

function Events({ gw }: { gw: Gateway }) {
  const [events, setEvents] = useState<ModelEvent[]>([]);
  const error = useSubscription<{ modelEvents: ModelEvent }>(gw, 'subscription AdminModelEvents { modelEvents { at type reason model host } }', {}, (d) =>
    setEvents((e) => [d.modelEvents, ...e].slice(0, 20)),
  );
  return (
    <div class="card">
      <h3>Model events</h3>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <ul class="events" aria-label="Model events" aria-live="polite">
        {events.map((e, i) => (
          <li key={`${e.at}-${i}`}>
            {new Date(e.at).toLocaleTimeString()} <strong>{e.type}</strong> {e.model} <span class="hint">{e.reason.toLowerCase()}</span> {e.host ?? ''}
          </li>
        ))}
      </ul>
      {events.length === 0 && <p class="hint">No model events since this page opened.</p>}
    </div>
  );
}

function Health({ gw }: { gw: Gateway }) {
  const q = useQuery<{ health: { status: string; database: boolean; upstream: boolean; version: string }; ollamaHosts: HostHealth[] }>(gw, HEALTH, {}, 5000);
  const h = q.data?.health;
  return (
    <div class="card">
      <h3>Health</h3>
      {q.error && (
        <p role="alert" class="error">
          {q.error}
        </p>
      )}
      {h && (
        <p>
          Gateway {h.version}: <span class={h.status === 'ok' ? 'good' : 'bad'}>{h.status}</span> · database {h.database ? 'up' : 'down'}
        </p>
      )}
      <ul class="hosts">
        {q.data?.ollamaHosts.map((o) => (
          <li key={o.url}>
            <span class={o.healthy ? 'good' : 'bad'}>{o.healthy ? '●' : '○'}</span> {o.url} — {o.healthy ? 'healthy' : `down${o.error ? `: ${o.error}` : ''}`} ·{' '}
            {o.activeRequests} active · checked {when(o.checkedAt)}
          </li>
        ))}
      </ul>
    </div>
  );
}

export function LiveSection({ gw }: { gw: Gateway }) {
  return (
    <section id="live" aria-labelledby="live-h">
      <h2 id="live-h">Live</h2>
      <div class="grid3">
        <Running gw={gw} />
        <Events gw={gw} />
        <Health gw={gw} />
      </div>
    </section>
  );
}
