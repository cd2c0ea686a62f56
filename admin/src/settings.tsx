import { useEffect, useRef, useState } from 'preact/hooks';
import { type Gateway, mutate, useQuery } from './client.js';
import { intOrNull } from './format.js';

interface SettingsShape {
  defaultSystemPrompt: string | null;
  inactivityThresholdSeconds: number | null;
  defaultModel: string | null;
}

/** The default system prompt and the global inactivity threshold. */
export function Settings({ gw }: { gw: Gateway }) {
  const q = useQuery<{ settings: SettingsShape }>(gw, 'query AdminSettings { settings { defaultSystemPrompt inactivityThresholdSeconds defaultModel } }');
  const [prompt, setPrompt] = useState('');
  const [threshold, setThreshold] = useState('');
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);
  // The fields start from the stored settings once; later refetches must not overwrite what is being typed.
  const filled = useRef(false);
  useEffect(() => {
    if (!q.data || filled.current) return;
    filled.current = true;
    setPrompt(q.data.settings.defaultSystemPrompt ?? '');
    setThreshold(q.data.settings.inactivityThresholdSeconds?.toString() ?? '');
  }, [q.data]);
  const save = async (what: string, query: string, variables: Record<string, unknown>) => {
    setMessage(null);
    try {
      await mutate(gw, query, variables);
      setMessage({ error: false, text: `${what} saved.` });
      q.refetch();
    } catch (err) {
      setMessage({ error: true, text: (err as Error).message });
    }
  };
  return (
    <div class="card">
      <h3>Settings</h3>
      <p class="hint">Default model: {q.data?.settings.defaultModel ?? 'none'}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save('Default system prompt', 'mutation AdminPrompt($p: String) { setDefaultSystemPrompt(prompt: $p) { defaultSystemPrompt } }', { p: prompt.trim() || null });
        }}
      >
        <label for="default-prompt">Default system prompt</label>
        <textarea id="default-prompt" rows={3} value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
        <button type="submit">Save prompt</button>
      </form>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void save('Inactivity threshold', 'mutation AdminThreshold($s: Int) { setInactivityThreshold(seconds: $s) { seconds } }', { s: intOrNull(threshold) });
        }}
      >
        <label>
          Global inactivity threshold (s) <input type="number" min="1" placeholder="none" value={threshold} onInput={(e) => setThreshold(e.currentTarget.value)} />
        </label>
        <button type="submit">Save threshold</button>
      </form>
      {message && (
        <p role={message.error ? 'alert' : 'status'} class={message.error ? 'error' : 'hint'}>
          {message.text}
        </p>
      )}
    </div>
  );
}
