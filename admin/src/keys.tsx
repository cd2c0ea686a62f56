import { useState } from 'preact/hooks';
import { type Gateway, mutate, useQuery } from './client.js';
import { intOrNull, num, when } from './format.js';

interface Limits {
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  maxConcurrentStreams: number | null;
}
interface Key {
  id: string;
  name: string;
  prefix: string;
  role: 'ADMIN' | 'USER';
  credits: number;
  active: boolean;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  limits: Limits;
  customLimits: Limits;
}

const KEY_FIELDS = 'id name prefix role credits active createdAt lastUsedAt revokedAt limits { requestsPerMinute tokensPerMinute maxConcurrentStreams } customLimits { requestsPerMinute tokensPerMinute maxConcurrentStreams }';
const LIST = `query AdminKeys($search: String, $includeRevoked: Boolean) { apiKeys(first: 100, search: $search, includeRevoked: $includeRevoked) { totalCount nodes { ${KEY_FIELDS} } } }`;

function LimitFields({ prefix, value }: { prefix: string; value?: Limits }) {
  return (
    <>
      <label>
        Requests/min <input name={`${prefix}rpm`} type="number" min="0" placeholder="default" defaultValue={value?.requestsPerMinute ?? ''} />
      </label>
      <label>
        Tokens/min <input name={`${prefix}tpm`} type="number" min="0" placeholder="default" defaultValue={value?.tokensPerMinute ?? ''} />
      </label>
      <label>
        Max streams <input name={`${prefix}streams`} type="number" min="0" placeholder="default" defaultValue={value?.maxConcurrentStreams ?? ''} />
      </label>
    </>
  );
}

const limitsFrom = (form: FormData, prefix: string) => ({
  requestsPerMinute: intOrNull(String(form.get(`${prefix}rpm`) ?? '')),
  tokensPerMinute: intOrNull(String(form.get(`${prefix}tpm`) ?? '')),
  maxConcurrentStreams: intOrNull(String(form.get(`${prefix}streams`) ?? '')),
});

function CreateKey({ gw, onCreated }: { gw: Gateway; onCreated(): void }) {
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const formEl = e.currentTarget as HTMLFormElement;
    const form = new FormData(formEl);
    setError(null);
    try {
      const data = await mutate<{ createApiKey: { secret: string; key: Key } }>(
        gw,
        'mutation AdminCreateKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id name } } }',
        {
          input: {
            name: String(form.get('name')),
            role: String(form.get('role')),
            credits: intOrNull(String(form.get('credits') ?? '')),
            limits: limitsFrom(form, 'new-'),
          },
        },
      );
      setSecret({ name: data.createApiKey.key.name, secret: data.createApiKey.secret });
      setCopied(false);
      formEl.reset();
      onCreated();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const copy = async () => {
    if (!secret) return;
    await navigator.clipboard.writeText(secret.secret).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <div class="card">
      <h3>New key</h3>
      <form class="row" onSubmit={submit} aria-label="New key">
        <label>
          Name <input name="name" required maxLength={200} />
        </label>
        <label>
          Role
          <select name="role">
            <option value="USER">USER</option>
            <option value="ADMIN">ADMIN</option>
          </select>
        </label>
        <label>
          Credits <input name="credits" type="number" min="0" placeholder="default" />
        </label>
        <LimitFields prefix="new-" />
        <button type="submit">Create key</button>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {secret && (
        <div class="secret" role="status" aria-label="New key secret">
          <p>
            Secret of <strong>{secret.name}</strong>, shown this once only: store it now.
          </p>
          <code data-testid="new-secret">{secret.secret}</code>
          <button type="button" onClick={copy}>
            {copied ? 'Copied' : 'Copy'}
          </button>
          <button type="button" onClick={() => setSecret(null)}>
            Done
          </button>
        </div>
      )}
    </div>
  );
}

function KeyRow({ gw, k, onChanged }: { gw: Gateway; k: Key; onChanged(): void }) {
  const [editing, setEditing] = useState(false);
  const [amount, setAmount] = useState('');
  const [error, setError] = useState<string | null>(null);
  const run = async (query: string, variables: Record<string, unknown>) => {
    setError(null);
    try {
      await mutate(gw, query, variables);
      onChanged();
      return true;
    } catch (err) {
      setError((err as Error).message);
      return false;
    }
  };
  const saveLimits = async (e: Event) => {
    e.preventDefault();
    const ok = await run('mutation AdminLimits($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { id } }', {
      input: { id: k.id, limits: limitsFrom(new FormData(e.currentTarget as HTMLFormElement), '') },
    });
    if (ok) setEditing(false);
  };
  return (
    <>
      <tr class={k.active ? '' : 'revoked'}>
        <td>{k.name}</td>
        <td>
          <code>{k.prefix}…</code>
        </td>
        <td>{k.role}</td>
        <td class="n">{num(k.credits)}</td>
        <td class="n">
          {k.limits.requestsPerMinute || '∞'} / {k.limits.tokensPerMinute || '∞'} / {k.limits.maxConcurrentStreams || '∞'}
        </td>
        <td>{when(k.lastUsedAt)}</td>
        <td>{k.active ? 'active' : `revoked ${when(k.revokedAt)}`}</td>
        <td class="actions">
          {k.active && (
            <>
              <input aria-label={`Credits to add to ${k.name}`} type="number" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} size={6} />
              <button
                type="button"
                disabled={!amount}
                onClick={async () => {
                  if (await run('mutation AdminCredits($input: AddCreditsInput!) { addCredits(input: $input) { id } }', { input: { id: k.id, amount: Number(amount) } })) setAmount('');
                }}
              >
                Add credits
              </button>
              <button type="button" onClick={() => setEditing(!editing)} aria-expanded={editing}>
                Edit limits
              </button>
              <button
                type="button"
                class="danger"
                onClick={() => confirm(`Revoke "${k.name}"? Its requests and streams stop at once.`) && run('mutation AdminRevoke($id: ID!) { revokeApiKey(id: $id) { id } }', { id: k.id })}
              >
                Revoke
              </button>
            </>
          )}
          {error && (
            <span role="alert" class="error">
              {error}
            </span>
          )}
        </td>
      </tr>
      {editing && (
        <tr>
          <td colSpan={8}>
            <form class="row" onSubmit={saveLimits} aria-label={`Limits of ${k.name}`}>
              <LimitFields prefix="" value={k.customLimits} />
              <button type="submit">Save limits</button>
              <span class="hint">Empty: the configured default; 0: unlimited.</span>
            </form>
          </td>
        </tr>
      )}
    </>
  );
}

export function KeysSection({ gw }: { gw: Gateway }) {
  const [search, setSearch] = useState('');
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const keys = useQuery<{ apiKeys: { totalCount: number; nodes: Key[] } }>(gw, LIST, { search: search || null, includeRevoked });
  return (
    <section id="keys" aria-labelledby="keys-h">
      <h2 id="keys-h">Keys</h2>
      <CreateKey gw={gw} onCreated={keys.refetch} />
      <div class="row">
        <label>
          Search keys <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <label>
          <input type="checkbox" checked={includeRevoked} onChange={(e) => setIncludeRevoked(e.currentTarget.checked)} /> Show revoked
        </label>
        <span class="hint">{keys.data ? `${keys.data.apiKeys.totalCount} ${keys.data.apiKeys.totalCount === 1 ? 'key' : 'keys'}` : ''}</span>
      </div>
      {keys.error && (
        <p role="alert" class="error">
          {keys.error}
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Prefix</th>
            <th>Role</th>
            <th>Credits</th>
            <th>Req/min · tok/min · streams</th>
            <th>Last used</th>
            <th>Status</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {keys.data?.apiKeys.nodes.map((k) => (
            <KeyRow key={k.id} gw={gw} k={k} onChanged={keys.refetch} />
          ))}
        </tbody>
      </table>
    </section>
  );
}
