// Promotions (docs/promotion.md): move a copilot to another model through offline gates,
// shadow and canary, decided by measurements. The list, a form to start one, and one
// promotion followed live: its stages, every gate, threshold and guard with its figures
// and intervals, the timeline, approve / abort, its runs and, once over, its report.
// Every call needs promote:<copilot> (or promote:*, or admin) for the copilot concerned.
import { useEffect, useState } from 'preact/hooks';
import { allows, api } from '../api.js';
import { html, Code, ErrorBox, Loading, Markdown, Notice, go, number, seconds, when } from '../ui.js';

const ACTIVE = new Set(['running', 'held', 'awaiting_approval']);

export function PromotionsView({ me, rest }) {
  return rest[0] ? html`<${PromotionDetail} id=${rest[0]} me=${me} />` : html`<${PromotionList} />`;
}

function PromotionList() {
  const [promotions, setPromotions] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api('/api/promotions?limit=50').then((body) => setPromotions(body.promotions), setError);
  }, []);
  return html`<section>
    <h1>Promotions</h1>
    <p>Move a copilot to another model only through offline gates → shadow → canary → promote (or roll back), each
      stage decided by measurements (<code>promotion:</code> in its copilot.yaml).</p>
    <${StartForm} />
    <h2>Promotions</h2>
    <${ErrorBox} error=${error} />
    ${promotions === null && !error ? html`<${Loading} what="promotions" />` : null}
    ${promotions && !promotions.length ? html`<p>No promotions yet.</p>` : null}
    ${promotions && promotions.length
      ? html`<table>
          <thead><tr><th scope="col">Promotion</th><th scope="col">Copilot</th><th scope="col">From → to</th><th scope="col">Stage</th><th scope="col">Status</th><th scope="col">Updated</th></tr></thead>
          <tbody>
            ${promotions.map(
              (p) => html`<tr>
                <td><a href=${`#/promotions/${p.promotion_id}`}><code>${p.promotion_id}</code></a></td>
                <td>${p.copilot}</td>
                <td><code>${p.current}</code> → <code>${p.candidate}</code></td>
                <td>${stageName(p)}</td>
                <td><${Status} status=${p.status} /></td>
                <td>${when(p.updated)}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : null}
  </section>`;
}

function stageName(p) {
  if (p.stage === 'canary') return `canary step ${p.step + 1}`;
  return p.stage;
}

function Status({ status }) {
  const kind = status === 'promoted' ? 'completed' : status === 'rolled_back' ? 'failed' : status === 'running' ? '' : 'awaiting_approval';
  return html`<span class=${`status ${kind}`}>${status.replace('_', ' ')}</span>`;
}

function StartForm() {
  const [copilots, setCopilots] = useState([]);
  const [copilot, setCopilot] = useState('');
  const [to, setTo] = useState('');
  const [variant, setVariant] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    // A key without copilots:write cannot list copilots: the name is then typed.
    api('/api/copilots').then((body) => setCopilots(body.copilots.map((c) => c.name)), () => setCopilots([]));
  }, []);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { copilot: copilot.trim(), to: to.trim() };
      if (variant.trim()) body.variant = variant.trim();
      const started = await api('/api/promotions', { method: 'POST', json: body });
      go(`promotions/${started.promotion_id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Start a promotion">
    <h2>Start a promotion</h2>
    <div class="row">
      <div class="field grow"><label for="promote-copilot">Copilot</label>
        <input id="promote-copilot" list="promote-copilots" value=${copilot} onInput=${(e) => setCopilot(e.target.value)} required />
        <datalist id="promote-copilots">${copilots.map((name) => html`<option value=${name} />`)}</datalist></div>
      <div class="field grow"><label for="promote-to">Candidate model</label>
        <input id="promote-to" value=${to} onInput=${(e) => setTo(e.target.value)} placeholder="openai:gpt-4.1" required /></div>
      <div class="field grow"><label for="promote-variant">Prompt variant (optional)</label>
        <input id="promote-variant" value=${variant} onInput=${(e) => setVariant(e.target.value)} placeholder="prompts/instructions.gpt.prompty" /></div>
    </div>
    <button type="submit" disabled=${busy || !copilot.trim() || !to.trim()}>${busy ? 'Starting…' : 'Start'}</button>
    <p><small>The server runs the offline stage (the copilot's eval suites on both models), then mirrors and routes
      its live traffic as the policy says.</small></p>
    <${ErrorBox} error=${error} title="Not started" />
  </form>`;
}

function PromotionDetail({ id, me }) {
  const [view, setView] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api(`/api/promotions/${encodeURIComponent(id)}`).then((v) => { setView(v); setError(null); }, setError);
  useEffect(() => { setView(null); load(); }, [id]);
  const active = view && ACTIVE.has(view.status);
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(load, 2000); // a live promotion moves on its own
    return () => clearInterval(timer);
  }, [id, active]);
  if (!view) return html`<section><h1>Promotion</h1><${ErrorBox} error=${error} />${error ? null : html`<${Loading} what="the promotion" />`}</section>`;
  return html`<section>
    <p><a href="#/promotions">← all promotions</a></p>
    <h1>Promotion <code>${view.promotion_id}</code></h1>
    <p><strong>${view.copilot}</strong>: <code>${view.current}</code> → <code>${view.candidate}</code>
      · <${Status} status=${view.status} /> · started ${when(view.created)}${view.started_by ? ` by ${view.started_by}` : ''}</p>
    ${view.reason ? html`<${Notice} kind=${view.status === 'promoted' ? 'ok' : 'warn'}>${view.reason}<//>` : null}
    <${ErrorBox} error=${error} />
    <${Stages} view=${view} />
    ${active ? html`<${Actions} view=${view} onDone=${setView} />` : null}
    <${Offline} view=${view} />
    ${view.shadow ? html`<${Live} title="Shadow" part=${view.shadow} kind="threshold" />` : null}
    ${view.canary.steps.map((s) => html`<${Live} title=${`Canary step ${s.step + 1}: ${Math.round(s.share * 100)}% of new conversations`} part=${s} kind="guard" />`)}
    ${view.diff ? html`<h2>The change to copilot.yaml</h2><${Code} text=${view.diff} language="diff" />` : null}
    <${Timeline} events=${view.timeline} />
    ${allows(me, 'admin') ? html`<${Runs} id=${view.promotion_id} />` : null}
    ${view.report ? html`<${Report} id=${view.promotion_id} />` : null}
  </section>`;
}

function Stages({ view }) {
  const steps = view.policy?.canary?.steps || [];
  const order = ['offline', 'shadow', ...steps.map((_, i) => `canary ${i}`), 'done'];
  const at = view.stage === 'canary' ? `canary ${view.step}` : view.stage;
  const reached = order.indexOf(at);
  const label = (name) => {
    if (name === 'done') return view.status === 'rolled_back' ? 'rolled back' : 'promote';
    if (name.startsWith('canary ')) {
      const i = Number(name.slice(7));
      return `canary ${Math.round(steps[i] * 100)}%`;
    }
    return name;
  };
  return html`<ol class="stages" aria-label="Stages">
    ${order.map((name, i) => {
      const state = i < reached ? 'passed' : i === reached ? (view.status === 'rolled_back' ? 'breach' : 'current') : 'later';
      return html`<li class=${`stage ${state}`} aria-current=${i === reached ? 'step' : undefined}>${label(name)}</li>`;
    })}
  </ol>`;
}

function Actions({ view, onDone }) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const act = async (what, json) => {
    setBusy(true);
    setError(null);
    try {
      onDone(await api(`/api/promotions/${view.promotion_id}/${what}`, { method: 'POST', json }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const approvable = view.status === 'held' || view.status === 'awaiting_approval';
  return html`<div class="card">
    ${view.status === 'awaiting_approval' ? html`<p>Every stage passed: the promotion waits for a person to approve it.</p>` : null}
    ${view.status === 'held' ? html`<p>Held for a person: approve to let it go on despite the breach, or abort to roll back.</p>` : null}
    <div class="row">
      ${approvable ? html`<button type="button" disabled=${busy} onClick=${() => act('approve')}>${view.status === 'held' ? 'Approve: go on' : 'Approve: promote'}</button>` : null}
      <label class="inline grow">Reason <input value=${reason} onInput=${(e) => setReason(e.target.value)} placeholder="said in the timeline" /></label>
      <button type="button" class="danger" disabled=${busy} onClick=${() => act('abort', { reason })}>Abort and roll back</button>
    </div>
    <${ErrorBox} error=${error} />
  </div>`;
}

function interval(value, low, high) {
  if (value === null || value === undefined) return '–';
  return html`${number(value)}${low !== null && low !== undefined ? html` <small>[${number(low)}, ${number(high)}]</small>` : null}`;
}

function Passed({ passed }) {
  if (passed === null || passed === undefined) return html`<span class="status">undecided</span>`;
  return passed ? html`<span class="status ok">pass</span>` : html`<span class="status failed">fail</span>`;
}

function Offline({ view }) {
  const arms = view.offline?.arms;
  const gates = view.policy?.offline?.gates || [];
  return html`<h2>Offline</h2>
    ${view.eval_run ? html`<p>Eval run <a href="#/evals"><code>${view.eval_run}</code></a>${view.offline?.chosen ? html` · prompt chosen: <strong>${view.offline.chosen}</strong>` : null}</p>` : null}
    ${!arms ? html`<p>${view.stage === 'offline' ? 'The suites are running on both models…' : 'No offline figures.'} ${gates.length} gate(s).</p>` : null}
    ${(arms || []).map(
      (arm) => html`<h3>${arm.label} <${Passed} passed=${arm.passed} /></h3>
        <table class="figures">
          <thead><tr><th scope="col">Gate</th><th scope="col">Result</th><th scope="col">Candidate [95%]</th><th scope="col">Current</th><th scope="col">Δ [95%]</th><th scope="col">Verdict</th><th scope="col">Detail</th></tr></thead>
          <tbody>
            ${arm.gates.map(
              (g) => html`<tr class=${g.passed ? '' : 'worse'}>
                <th scope="row">${g.metric} <small>${g.name}</small></th>
                <td><${Passed} passed=${g.passed} /></td>
                <td>${interval(g.value, g.low, g.high)}</td>
                <td>${number(g.baseline)}</td>
                <td>${interval(g.delta, g.delta_low, g.delta_high)}</td>
                <td>${g.verdict || '–'}</td>
                <td>${g.detail}</td>
              </tr>`,
            )}
          </tbody>
        </table>`,
    )}`;
}

function Live({ title, part, kind }) {
  return html`<h2>${title}</h2>
    <p><span class=${`status ${part.state === 'pass' ? 'ok' : part.state === 'breach' ? 'failed' : ''}`}>${part.state}</span>
      ${part.reason} · candidate ${part.candidate} request(s), current ${part.current}</p>
    ${part.rules.length
      ? html`<table class="figures">
          <thead><tr><th scope="col">${kind === 'guard' ? 'Guard' : 'Threshold'}</th><th scope="col">Result</th><th scope="col">Value [95%]</th><th scope="col">Current</th><th scope="col">n</th><th scope="col">Detail</th></tr></thead>
          <tbody>
            ${part.rules.map(
              (r) => html`<tr class=${r.passed === false ? 'worse' : ''}>
                <th scope="row">${r.rule}</th><td><${Passed} passed=${r.passed} /></td>
                <td>${interval(r.value, r.low, r.high)}</td><td>${number(r.baseline)}</td><td>${r.n}</td><td>${r.detail}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : null}
    ${part.metrics.length
      ? html`<details><summary>Online metrics, both models</summary>
          <table class="figures">
            <thead><tr><th scope="col">Metric</th><th scope="col">Candidate [95%] n</th><th scope="col">Current [95%] n</th></tr></thead>
            <tbody>
              ${part.metrics.map(
                (m) => html`<tr><th scope="row">${m.metric} <small>(${m.better} is better)</small></th>
                  <td>${m.candidate ? html`${interval(m.candidate.mean, m.candidate.low, m.candidate.high)} n=${m.candidate.n}` : '–'}</td>
                  <td>${m.current ? html`${interval(m.current.mean, m.current.low, m.current.high)} n=${m.current.n}` : '–'}</td></tr>`,
              )}
            </tbody>
          </table></details>`
      : null}`;
}

function Timeline({ events }) {
  return html`<h2>Timeline</h2>
    <ol class="promotion-events" aria-label="Timeline">
      ${events.map((e) => html`<li><time>${when(e.at)}</time> <strong>${e.kind}</strong> <small>${e.stage}${e.stage === 'canary' ? ` step ${e.step + 1}` : ''}</small> ${e.message}</li>`)}
    </ol>`;
}

function Runs({ id }) {
  const [runs, setRuns] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api(`/api/runs?limit=30&promotion=${encodeURIComponent(id)}`).then((b) => setRuns(b.runs), setError); }, [id]);
  if (error) return html`<h2>Runs</h2><${ErrorBox} error=${error} />`;
  if (!runs) return null;
  return html`<h2>Runs</h2>
    ${runs.length
      ? html`<table>
          <thead><tr><th scope="col">Started</th><th scope="col">Role</th><th scope="col">Model</th><th scope="col">Question</th><th scope="col">Status</th><th scope="col">Time</th></tr></thead>
          <tbody>${runs.map((r) => html`<tr>
            <td><a href=${`#/traces/${r.run_id}`}>${when(r.started)}</a></td><td>${r.promotion_role}</td><td><code>${r.model || '–'}</code></td>
            <td class="clip">${r.question || '–'}</td><td><span class=${`status ${r.status}`}>${r.status}</span></td><td>${seconds(r.duration_s)}</td></tr>`)}
          </tbody>
        </table>`
      : html`<p>No mirrored or routed runs yet.</p>`}`;
}

function Report({ id }) {
  const [text, setText] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api(`/api/promotions/${encodeURIComponent(id)}/report?format=md`, { raw: true }).then(setText, setError); }, [id]);
  const download = async () => {
    try {
      const page = await api(`/api/promotions/${encodeURIComponent(id)}/report?format=html`, { raw: true });
      const link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob([page], { type: 'text/html' }));
      link.download = `promotion-${id}.html`;
      link.click();
      URL.revokeObjectURL(link.href);
    } catch (err) {
      setError(err);
    }
  };
  return html`<h2>Report</h2>
    <p><button type="button" onClick=${download}>Download the HTML report</button></p>
    <${ErrorBox} error=${error} />
    ${text !== null ? html`<div class="report"><${Markdown} text=${text} /></div>` : null}`;
}
