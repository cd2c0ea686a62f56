import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type Gateway, connect, describeError, forgetKey, storeKey, storedKey } from './client.js';
import { KeysSection } from './keys.js';
import { LiveSection } from './live.js';
import { ModelsSection } from './models.js';
import { UsageSection } from './usage.js';

interface Me {
  me: { name: string; role: 'ADMIN' | 'USER'; prefix: string };
}

/** Checks a key with `me`; only an ADMIN key is kept (in sessionStorage). */
async function signIn(key: string): Promise<{ gw: Gateway; me: Me['me'] } | { error: string }> {
  const gw = connect(key);
  const r = await gw.client.query<Me>('query AdminMe { me { name role prefix } }', {}).toPromise();
  if (r.error || !r.data) {
    gw.dispose();
    const code = r.error?.graphQLErrors[0]?.extensions?.code;
    return { error: code === 'UNAUTHENTICATED' ? 'This API key is invalid or revoked.' : (describeError(r.error) ?? 'Sign-in failed.') };
  }
  if (r.data.me.role !== 'ADMIN') {
    gw.dispose();
    return { error: `"${r.data.me.name}" is a USER key. The admin console needs an ADMIN key.` };
  }
  return { gw, me: r.data.me };
}

function SignIn({ onSignedIn, initialError }: { onSignedIn(gw: Gateway, me: Me['me']): void; initialError?: string | null }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(initialError ?? null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const result = await signIn(key.trim());
    setBusy(false);
    if ('error' in result) return setError(result.error);
    storeKey(key.trim());
    setKey('');
    onSignedIn(result.gw, result.me);
  };
  return (
    <main class="signin">
      <h1>LLM gateway admin</h1>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <p class="hint">The key stays in this tab's session storage and is sent only to this gateway.</p>
    </main>
  );
}

function Console({ gw, me, onSignOut }: { gw: Gateway; me: Me['me']; onSignOut(): void }) {
  return (
    <>
      <header>
        <h1>LLM gateway admin</h1>
        <nav aria-label="Sections">
          <a href="#keys">Keys</a> <a href="#models">Models</a> <a href="#usage">Usage</a> <a href="#live">Live</a>
        </nav>
        <span class="who">
          {me.name} ({me.prefix}…)
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main>
        <LiveSection gw={gw} />
        <KeysSection gw={gw} />
        <ModelsSection gw={gw} />
        <UsageSection gw={gw} />
      </main>
    </>
  );
}

function App() {
  const [session, setSession] = useState<{ gw: Gateway; me: Me['me'] } | null>(null);
  const [resumeError, setResumeError] = useState<string | null>(null);
  const [resuming, setResuming] = useState(() => storedKey() !== null);
  useEffect(() => {
    const key = storedKey();
    if (!key) return;
    // A reload in the same tab signs in again with the stored key.
    void signIn(key).then((r) => {
      if ('error' in r) {
        forgetKey();
        setResumeError(r.error);
      } else setSession(r);
      setResuming(false);
    });
  }, []);
  if (resuming) return <p class="hint">Signing in…</p>;
  if (!session) return <SignIn initialError={resumeError} onSignedIn={(gw, me) => setSession({ gw, me })} />;
  return (
    <Console
      gw={session.gw}
      me={session.me}
      onSignOut={() => {
        forgetKey();
        session.gw.dispose();
        setSession(null);
      }}
    />
  );
}

render(<App />, document.getElementById('root')!);
