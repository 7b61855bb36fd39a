// The Studio's shell: sign-in, the navigation (only the views this key's scopes allow)
// and a hash router (#/copilots, #/playground, ...: the server serves one page).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, allows, promotesAny, storeKey, storedKey, ApiError } from './api.js';
import { html, ErrorBox } from './ui.js';
import { CopilotsView } from './views/copilots.js';
import { KnowledgeView } from './views/knowledge.js';
import { PlaygroundView } from './views/playground.js';
import { TracesView } from './views/traces.js';
import { EvalsView } from './views/evals.js';
import { PromotionsView } from './views/promotions.js';
import './style.css';

const VIEWS = [
  { path: 'copilots', label: 'Copilots', scope: 'copilots:write', view: CopilotsView },
  { path: 'knowledge', label: 'Knowledge', scope: 'admin', view: KnowledgeView },
  { path: 'playground', label: 'Playground', scope: null, view: PlaygroundView },
  { path: 'traces', label: 'Traces', scope: 'admin', view: TracesView },
  { path: 'evals', label: 'Evals', scope: 'admin', view: EvalsView },
  { path: 'promotions', label: 'Promotions', scope: promotesAny, view: PromotionsView },
];

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { view: parts[0] || '', rest: parts.slice(1).filter(Boolean) };
}

function SignIn({ onSignedIn, error }) {
  const [key, setKey] = useState('');
  const [problem, setProblem] = useState(error);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    storeKey(key.trim());
    try {
      onSignedIn(await api('/api/me'));
    } catch (err) {
      storeKey('');
      setProblem(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <h1>Pilothouse Studio</h1>
    <p>Sign in with an API key of this server. <code>pilothouse serve</code> printed an admin key on its first start;
      <code>pilothouse keys create --scope ...</code> makes more. The key is kept in this tab only (session storage)
      and forgotten when the tab closes.</p>
    <form onSubmit=${submit}>
      <label for="api-key">API key</label>
      <input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="ph-…"
        value=${key} onInput=${(e) => setKey(e.target.value)} required />
      <button type="submit" disabled=${busy || !key.trim()}>Sign in</button>
    </form>
    <${ErrorBox} error=${problem} />
  </main>`;
}

function App() {
  const [me, setMe] = useState(null);
  const [error, setError] = useState(null);
  const [checked, setChecked] = useState(false);
  const [route, setRoute] = useState(parseHash());

  useEffect(() => {
    const changed = () => setRoute(parseHash());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);

  useEffect(() => {
    // Under --no-auth the server answers without a key; else a stored key is tried.
    api('/api/me')
      .then(setMe)
      .catch((err) => {
        if (!(err instanceof ApiError && err.status === 401)) setError(err);
        if (storedKey()) storeKey('');
      })
      .finally(() => setChecked(true));
  }, []);

  if (!checked) return html`<p class="loading">Connecting…</p>`;
  if (!me) return html`<${SignIn} onSignedIn=${(m) => { setError(null); setMe(m); }} error=${error} />`;

  const visible = VIEWS.filter((v) => !v.scope || (typeof v.scope === 'function' ? v.scope(me) : allows(me, v.scope)));
  const current = visible.find((v) => v.path === route.view) || visible.find((v) => v.path === 'playground');
  const signOut = () => {
    storeKey('');
    setMe(null);
  };
  const View = current.view;
  return html`<div class="shell">
    <header class="top">
      <span class="brand">Pilothouse Studio</span>
      <span class="who">
        ${me.auth ? html`Signed in as <strong>${me.name}</strong> (${me.scopes.join(', ')})` : html`<strong>--no-auth</strong> (this machine only; uploads off)`}
        ${me.auth ? html` <button type="button" class="link" onClick=${signOut}>Sign out</button>` : null}
      </span>
    </header>
    <nav aria-label="Studio views">
      <ul>
        ${visible.map(
          (v) => html`<li><a href=${`#/${v.path}`} aria-current=${v === current ? 'page' : undefined}>${v.label}</a></li>`,
        )}
      </ul>
    </nav>
    <main id="main" tabindex="-1">
      <${View} me=${me} rest=${current.path === route.view ? route.rest : []} key=${current.path} />
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
