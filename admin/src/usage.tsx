import uPlot from 'uplot';
import { useEffect, useRef, useState } from 'preact/hooks';
import { type Gateway, useQuery } from './client.js';
import { num, when } from './format.js';

interface Bucket {
  group: string;
  day: string | null;
  model: string | null;
  apiKeyName: string | null;
  apiKeyPrefix: string | null;
  requests: number;
  completed: number;
  cancelled: number;
  failed: number;
  promptTokens: number;
  completionTokens: number;
  creditsCharged: number;
}
interface Entry {
  id: string;
  createdAt: string;
  model: string;
  apiKeyId: string;
  status: string;
  errorCode: string | null;
  promptTokens: number;
  completionTokens: number;
  creditsCharged: number;
  durationMs: number | null;
  prompt: string;
}

const BUCKET = 'group day model apiKeyName apiKeyPrefix requests completed cancelled failed promptTokens completionTokens creditsCharged';
const USAGE = `query AdminUsage($from: DateTime) {
  byDay: usage(groupBy: DAY, from: $from) { ${BUCKET} }
  byModel: usage(groupBy: MODEL, from: $from) { ${BUCKET} }
  byKey: usage(groupBy: KEY, from: $from) { ${BUCKET} }
  generations(allKeys: true, first: 15) { nodes { id createdAt model apiKeyId status errorCode promptTokens completionTokens creditsCharged durationMs prompt } }
}`;

const DAY_MS = 86_400_000;

/** Requests, tokens and credits per UTC day as a uPlot chart; days without traffic are zeros. */
function DayChart({ days, span }: { days: Bucket[]; span: number }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const byDay = new Map(days.map((d) => [d.day, d]));
    const xs: number[] = [];
    const series: number[][] = [[], [], []];
    for (let t = today - (span - 1) * DAY_MS; t <= today; t += DAY_MS) {
      const b = byDay.get(new Date(t).toISOString().slice(0, 10));
      xs.push(t / 1000);
      series[0]!.push(b?.requests ?? 0);
      series[1]!.push(b ? b.promptTokens + b.completionTokens : 0);
      series[2]!.push(b?.creditsCharged ?? 0);
    }
    const width = Math.max(320, el.current.clientWidth);
    const bars = uPlot.paths.bars!({ size: [0.6, 40] });
    const plot = new uPlot(
      {
        width,
        height: 240,
        scales: { x: { time: true }, n: { auto: true }, tokens: { auto: true } },
        axes: [{}, { scale: 'n', label: 'requests · credits' }, { scale: 'tokens', side: 1, label: 'tokens', grid: { show: false } }],
        series: [
          { label: 'day', value: (_u, v) => (v === null ? '' : new Date(v * 1000).toISOString().slice(0, 10)) },
          { label: 'requests', scale: 'n', stroke: '#2563eb', fill: 'rgba(37,99,235,0.35)', paths: bars },
          { label: 'tokens', scale: 'tokens', stroke: '#16a34a', width: 2 },
          { label: 'credits', scale: 'n', stroke: '#d97706', width: 2 },
        ],
      },
      [xs, ...series],
      el.current,
    );
    return () => plot.destroy();
  }, [days, span]);
  return <div ref={el} class="chart" role="img" aria-label={`Requests, tokens and credits per day, last ${span} days`} />;
}

/** Horizontal bars of one measure per model or per key. */
function Bars({ title, rows, label }: { title: string; rows: Bucket[]; label(b: Bucket): string }) {
  const [measure, setMeasure] = useState<'requests' | 'tokens' | 'creditsCharged'>('requests');
  const value = (b: Bucket) => (measure === 'tokens' ? b.promptTokens + b.completionTokens : b[measure]);
  const max = Math.max(1, ...rows.map(value));
  const sorted = [...rows].sort((a, b) => value(b) - value(a)).slice(0, 12);
  return (
    <figure class="card bars" aria-label={title}>
      <figcaption>
        {title}{' '}
        <select aria-label={`${title}: measure`} value={measure} onChange={(e) => setMeasure(e.currentTarget.value as typeof measure)}>
          <option value="requests">requests</option>
          <option value="tokens">tokens</option>
          <option value="creditsCharged">credits</option>
        </select>
      </figcaption>
      {sorted.length === 0 && <p class="hint">No requests in this period.</p>}
      {sorted.map((b) => (
        <div class="hbar" key={b.group}>
          <span class="hbar-label">{label(b)}</span>
          <span class="hbar-track">
            <span class="hbar-fill" style={{ width: `${(value(b) / max) * 100}%` }} />
          </span>
          <span class="n">{num(value(b))}</span>
        </div>
      ))}
    </figure>
  );
}

export function UsageSection({ gw }: { gw: Gateway }) {
  const [span, setSpan] = useState(14);
  const [from] = useState(() => new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - 89 * DAY_MS).toISOString());
  const q = useQuery<{ byDay: Bucket[]; byModel: Bucket[]; byKey: Bucket[]; generations: { nodes: Entry[] } }>(gw, USAGE, { from }, 15_000);
  return (
    <section id="usage" aria-labelledby="usage-h">
      <h2 id="usage-h">Usage</h2>
      {q.error && (
        <p role="alert" class="error">
          {q.error}
        </p>
      )}
      <div class="row">
        <label>
          Period
          <select value={span} onChange={(e) => setSpan(Number(e.currentTarget.value))}>
            <option value={7}>7 days</option>
            <option value={14}>14 days</option>
            <option value={30}>30 days</option>
            <option value={90}>90 days</option>
          </select>
        </label>
        <button type="button" onClick={q.refetch}>
          Refresh
        </button>
      </div>
      {q.data && <DayChart days={q.data.byDay} span={span} />}
      <div class="grid2">
        <Bars title="By model (last 90 days)" rows={q.data?.byModel ?? []} label={(b) => b.model ?? b.group} />
        <Bars title="By key (last 90 days)" rows={q.data?.byKey ?? []} label={(b) => `${b.apiKeyName ?? '?'} (${b.apiKeyPrefix ?? ''}…)`} />
      </div>
      <h3>Latest generations</h3>
      <table>
        <thead>
          <tr>
            <th>When</th>
            <th>Model</th>
            <th>Status</th>
            <th>Tokens (prompt + completion)</th>
            <th>Credits</th>
            <th>Duration</th>
            <th>Prompt</th>
          </tr>
        </thead>
        <tbody>
          {q.data?.generations.nodes.map((g) => (
            <tr key={g.id}>
              <td>{when(g.createdAt)}</td>
              <td>{g.model}</td>
              <td>
                <span class={`status ${g.status.toLowerCase()}`}>{g.status}</span> {g.errorCode && <span class="hint">{g.errorCode}</span>}
              </td>
              <td class="n">
                {num(g.promptTokens)} + {num(g.completionTokens)}
              </td>
              <td class="n">{num(g.creditsCharged)}</td>
              <td class="n">{g.durationMs === null ? '—' : `${(g.durationMs / 1000).toFixed(1)} s`}</td>
              <td class="prompt">{g.prompt.slice(0, 80)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
