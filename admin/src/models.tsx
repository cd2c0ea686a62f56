import { useState } from 'preact/hooks';
import { type Gateway, mutate, useQuery, useSubscription } from './client.js';
import { bytes, intOrNull, num } from './format.js';
import { Settings } from './settings.js';

interface Placement {
  host: string;
  installed: boolean;
  loaded: boolean;
  vramBytes: number | null;
}
interface Model {
  name: string;
  alias: string | null;
  description: string | null;
  installed: boolean;
  loaded: boolean;
  isDefault: boolean;
  inCatalog: boolean;
  enabled: boolean;
  sizeBytes: number | null;
  parameterSize: string | null;
  promptPricePer1k: number | null;
  completionPricePer1k: number | null;
  inactivityThresholdSeconds: number | null;
  effectiveInactivityThresholdSeconds: number | null;
  hosts: Placement[];
}
interface Host {
  url: string;
  healthy: boolean;
  loadedModels: string[] | null;
  gpu: { usedBytes: number | null; freeBytes: number | null; totalBytes: number | null; source: string; warning: string | null };
}
interface Progress {
  host: string;
  status: string;
  percent: number | null;
  completed: number | null;
  total: number | null;
  done: boolean;
}

const MODELS = `query AdminModels {
  models { name alias description installed loaded isDefault inCatalog enabled sizeBytes parameterSize promptPricePer1k completionPricePer1k
    inactivityThresholdSeconds effectiveInactivityThresholdSeconds hosts { host installed loaded vramBytes } }
  ollamaHosts { url healthy loadedModels gpu { usedBytes freeBytes totalBytes source warning } }
}`;

export function VramBar({ host }: { host: Host }) {
  const { usedBytes: used, totalBytes: total } = host.gpu;
  const pct = used !== null && total ? Math.min(100, (used / total) * 100) : null;
  return (
    <div class="vram">
      <div class="vram-label">
        <strong>{host.url}</strong> {host.healthy ? '' : <span class="bad">unreachable</span>} — VRAM {bytes(used)} used, {bytes(host.gpu.freeBytes)} free of {bytes(total)}{' '}
        <span class="hint">({host.gpu.source.toLowerCase()})</span>
      </div>
      <div class={pct === null ? 'bar unknown' : 'bar'} role="meter" aria-label={`VRAM used on ${host.url}`} aria-valuemin={0} aria-valuemax={total ?? 0} aria-valuenow={used ?? 0}>
        <div class="fill" style={{ width: `${pct ?? 0}%` }} />
      </div>
      {host.gpu.warning && <div class="hint">{host.gpu.warning}</div>}
    </div>
  );
}

function Pull({ gw, onDone }: { gw: Gateway; onDone(): void }) {
  const [name, setName] = useState('');
  const [pulling, setPulling] = useState<string | null>(null);
  const [progress, setProgress] = useState<Record<string, Progress>>({});
  const error = useSubscription<{ pullModel: Progress }>(
    gw,
    'subscription AdminPull($name: String!) { pullModel(name: $name) { host status percent completed total done } }',
    { name: pulling ?? '' },
    (d) => {
      setProgress((p) => ({ ...p, [d.pullModel.host]: d.pullModel }));
      if (d.pullModel.done) onDone();
    },
    pulling !== null,
  );
  return (
    <div class="card">
      <h3>Pull a model</h3>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setProgress({});
          setPulling(name.trim());
        }}
      >
        <label>
          Model to pull <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. qwen2.5:0.5b" required />
        </label>
        <button type="submit">Pull</button>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {Object.values(progress).map((p) => (
        <div key={p.host} class="pull">
          <progress aria-label={`Pull of ${pulling} on ${p.host}`} max={100} value={p.done ? 100 : (p.percent ?? 0)} />
          <span>
            {p.host}: {p.status} {p.percent !== null ? `${p.percent.toFixed(1)} %` : ''} {p.total ? `(${bytes(p.completed)} of ${bytes(p.total)})` : ''}
          </span>
        </div>
      ))}
    </div>
  );
}

function EditModel({ gw, m, onSaved }: { gw: Gateway; m: Model; onSaved(): void }) {
  const [error, setError] = useState<string | null>(null);
  const save = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? '').trim() || null;
    const fields = {
      alias: text('alias'),
      description: text('description'),
      promptPricePer1k: text('prompt') === null ? null : Number(text('prompt')),
      completionPricePer1k: text('completion') === null ? null : Number(text('completion')),
      inactivityThresholdSeconds: intOrNull(String(f.get('threshold') ?? '')),
    };
    setError(null);
    try {
      if (m.inCatalog) await mutate(gw, 'mutation AdminUpdateModel($name: String!, $input: UpdateModelInput!) { updateModel(name: $name, input: $input) { name } }', { name: m.name, input: fields });
      else await mutate(gw, 'mutation AdminRegisterModel($input: RegisterModelInput!) { registerModel(input: $input) { name } }', { input: { name: m.name, ...fields } });
      onSaved();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form class="row" onSubmit={save} aria-label={`Catalog entry of ${m.name}`}>
      <label>
        Alias <input name="alias" defaultValue={m.alias ?? ''} />
      </label>
      <label>
        Description <input name="description" defaultValue={m.description ?? ''} size={30} />
      </label>
      <label>
        Prompt price /1k <input name="prompt" type="number" step="any" min="0" defaultValue={m.promptPricePer1k ?? ''} />
      </label>
      <label>
        Completion price /1k <input name="completion" type="number" step="any" min="0" defaultValue={m.completionPricePer1k ?? ''} />
      </label>
      <label>
        Own threshold (s) <input name="threshold" type="number" min="1" placeholder="global" defaultValue={m.inactivityThresholdSeconds ?? ''} />
      </label>
      <button type="submit">Save</button>
      {error && (
        <span role="alert" class="error">
          {error}
        </span>
      )}
    </form>
  );
}

function ModelRow({ gw, m, onChanged }: { gw: Gateway; m: Model; onChanged(): void }) {
  const [editing, setEditing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);
  const act = async (label: string, query: string) => {
    setBusy(true);
    setMessage(null);
    try {
      await mutate(gw, query, { name: m.name });
      setMessage({ error: false, text: `${label}: done` });
      onChanged();
    } catch (err) {
      setMessage({ error: true, text: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <tr>
        <td>
          <strong>{m.name}</strong> {m.isDefault && <span class="tag">default</span>} {!m.enabled && <span class="tag">disabled</span>}
          {m.alias && <div class="hint">alias {m.alias}</div>}
        </td>
        <td>{m.parameterSize ?? ''}</td>
        <td class="n">{bytes(m.sizeBytes)}</td>
        <td>
          {m.hosts.map((h) => (
            <div key={h.host}>
              {h.host}: {h.loaded ? `loaded (${bytes(h.vramBytes)} VRAM)` : h.installed ? 'installed' : '—'}
            </div>
          ))}
          {!m.installed && <span class="hint">not installed</span>}
        </td>
        <td class="n">
          {m.promptPricePer1k ?? 0} / {m.completionPricePer1k ?? 0}
        </td>
        <td class="n">{m.effectiveInactivityThresholdSeconds ?? '—'}</td>
        <td class="actions">
          {m.installed && !m.loaded && (
            <button type="button" disabled={busy} onClick={() => act('Load', 'mutation AdminLoad($name: String!) { loadModel(name: $name) { host } }')}>
              Load
            </button>
          )}
          {m.loaded && (
            <button type="button" disabled={busy} onClick={() => act('Unload', 'mutation AdminUnload($name: String!) { unloadModel(name: $name) { wasLoaded } }')}>
              Unload
            </button>
          )}
          {m.installed && !m.isDefault && (
            <button type="button" disabled={busy} onClick={() => act('Make default', 'mutation AdminChange($name: String!) { changeModel(to: $name) { sizeGb } }')}>
              Make default
            </button>
          )}
          <button type="button" onClick={() => setEditing(!editing)} aria-expanded={editing}>
            Edit
          </button>
          {m.installed && (
            <button
              type="button"
              class="danger"
              disabled={busy}
              onClick={() => confirm(`Delete ${m.name} from every host?`) && act('Delete', 'mutation AdminDelete($name: String!) { deleteModel(name: $name) { hosts } }')}
            >
              Delete
            </button>
          )}
          {message && (
            <div role={message.error ? 'alert' : 'status'} class={message.error ? 'error' : 'hint'}>
              {message.text}
            </div>
          )}
        </td>
      </tr>
      {editing && (
        <tr>
          <td colSpan={7}>
            <EditModel gw={gw} m={m} onSaved={() => (setEditing(false), onChanged())} />
          </td>
        </tr>
      )}
    </>
  );
}

export function ModelsSection({ gw }: { gw: Gateway }) {
  const q = useQuery<{ models: Model[]; ollamaHosts: Host[] }>(gw, MODELS, {}, 10_000);
  return (
    <section id="models" aria-labelledby="models-h">
      <h2 id="models-h">Models</h2>
      {q.error && (
        <p role="alert" class="error">
          {q.error}
        </p>
      )}
      <div class="card">
        <h3>GPU memory</h3>
        {q.data?.ollamaHosts.map((h) => (
          <VramBar key={h.url} host={h} />
        ))}
      </div>
      <table>
        <thead>
          <tr>
            <th>Model</th>
            <th>Params</th>
            <th>Size</th>
            <th>Hosts</th>
            <th>Price /1k (prompt / completion)</th>
            <th>Idle threshold (s)</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {q.data?.models.map((m) => (
            <ModelRow key={m.name} gw={gw} m={m} onChanged={q.refetch} />
          ))}
        </tbody>
      </table>
      <p class="hint">{q.data ? `${num(q.data.models.length)} models` : 'Loading…'}</p>
      <Pull gw={gw} onDone={q.refetch} />
      <Settings gw={gw} />
    </section>
  );
}
