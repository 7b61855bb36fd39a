// Traces: the runs (newest first) and one run's span tree: retrieval, model calls with
// their prompts, tool calls with their arguments, approvals; each span's timing on a
// shared time line, its tokens and cost, attributes and events.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, ErrorBox, Loading, JsonView, seconds, money, when } from '../ui.js';

export function TracesView({ rest }) {
  return rest[0] ? html`<${RunDetail} runId=${rest[0]} />` : html`<${RunList} />`;
}

function RunList() {
  const [runs, setRuns] = useState(null);
  const [copilot, setCopilot] = useState('');
  const [error, setError] = useState(null);
  const load = () => api(`/api/runs?limit=50${copilot ? `&copilot=${encodeURIComponent(copilot)}` : ''}`).then((b) => setRuns(b.runs), setError);
  useEffect(() => { load(); }, [copilot]);
  return html`<section>
    <div class="heading-row">
      <h1>Traces</h1>
      <label class="inline">Copilot <input value=${copilot} onChange=${(e) => setCopilot(e.target.value.trim())} placeholder="all" size="14" /></label>
    </div>
    <${ErrorBox} error=${error} />
    ${runs === null && !error ? html`<${Loading} what="runs" />` : null}
    ${runs && !runs.length ? html`<p>No runs yet: ask something in the playground.</p>` : null}
    ${runs && runs.length
      ? html`<table>
          <thead><tr><th scope="col">Started</th><th scope="col">Copilot</th><th scope="col">Question</th><th scope="col">Status</th><th scope="col">Model</th><th scope="col">Tokens</th><th scope="col">Cost</th><th scope="col">Time</th></tr></thead>
          <tbody>
            ${runs.map(
              (r) => html`<tr>
                <td><a href=${`#/traces/${r.run_id}`}>${when(r.started)}</a></td>
                <td>${r.copilot || r.name}</td>
                <td class="clip">${r.question || '–'}</td>
                <td><span class=${`status ${r.status}`}>${r.status}</span></td>
                <td><code>${r.model || '–'}</code></td>
                <td>${r.input_tokens} / ${r.output_tokens}</td>
                <td>${money(r.cost_usd)}</td>
                <td>${seconds(r.duration_s)}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : null}
  </section>`;
}


function prompts(attributes) {
  // Prompt and completion attributes (messages as JSON), shown first and readable.
  const found = [];
  for (const [key, value] of Object.entries(attributes)) {
    if (/(prompt|messages?|completion|arguments|result|answer)$|input\.value|output\.value/i.test(key)) found.push([key, value]);
  }
  return found;
}

function parseMaybe(value) {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (!(text.startsWith('{') || text.startsWith('['))) return value;
  try {
    return JSON.parse(text);
  } catch {
    return value;
  }
}

function Span({ span, origin, total, depth }) {
  const offset = total ? ((span.start_time - origin) / total) * 100 : 0;
  const width = total && span.duration_s ? Math.max((span.duration_s / total) * 100, 0.5) : 0.5;
  const attributes = span.attributes || {};
  const shown = prompts(attributes);
  const rest = Object.entries(attributes).filter(([k]) => !shown.some(([s]) => s === k));
  const tokens = ['gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens'].map((k) => attributes[k]).filter((v) => v !== undefined);
  return html`<li class="span">
    <details open=${depth < 1 || span.kind === 'model' || span.kind === 'tool'}>
      <summary>
        <span class="span-name"><span class=${`kind kind-${span.kind}`}>${span.kind}</span> ${span.name}</span>
        <span class=${`status ${span.status}`}>${span.status}</span>
        <span class="span-time">${seconds(span.duration_s)}</span>
        <span class="span-tokens">${tokens.length ? `${tokens.join(' → ')} tokens` : ''}</span>
        <span class="span-cost">${attributes['pilothouse.usage.cost_usd'] !== undefined ? money(attributes['pilothouse.usage.cost_usd']) : ''}</span>
        <span class="timeline" aria-hidden="true"><span class="bar" style=${`left:${offset}%;width:${width}%`}></span></span>
      </summary>
      <div class="span-body">
        ${span.error ? html`<div class="error">${span.error_type ? `${span.error_type}: ` : ''}${span.error}</div>` : null}
        ${shown.map(([key, value]) => html`<div class="attr"><div class="attr-name">${key}</div><${JsonView} value=${parseMaybe(value)} /></div>`)}
        ${rest.length
          ? html`<table class="attrs"><tbody>${rest.map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${typeof v === 'object' ? JSON.stringify(v) : String(v)}</td></tr>`)}</tbody></table>`
          : null}
        ${span.events.length
          ? html`<div class="attr-name">Events</div><ul>${span.events.map((e) => html`<li><code>${e.name}</code> ${Object.keys(e.attributes).length ? JSON.stringify(e.attributes) : ''}</li>`)}</ul>`
          : null}
      </div>
    </details>
    ${span.children.length ? html`<ul class="tree">${span.children.map((c) => html`<${Span} span=${c} origin=${origin} total=${total} depth=${depth + 1} />`)}</ul>` : null}
  </li>`;
}

function RunDetail({ runId }) {
  const [run, setRun] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api(`/api/runs/${encodeURIComponent(runId)}`).then(setRun, setError); }, [runId]);
  if (error) return html`<section><h1>Run ${runId}</h1><${ErrorBox} error=${error} /><p><a href="#/traces">All runs</a></p></section>`;
  if (!run) return html`<${Loading} what="the trace" />`;
  const origin = run.started;
  const total = run.duration_s || Math.max(...run.spans.map((s) => (s.end_time || s.start_time) - origin), 0.001);
  return html`<section>
    <p><a href="#/traces">← All runs</a></p>
    <h1>Run <code>${run.run_id.slice(0, 12)}</code></h1>
    <dl class="facts">
      <div><dt>Copilot</dt><dd>${run.copilot || '–'}</dd></div>
      <div><dt>Status</dt><dd><span class=${`status ${run.status}`}>${run.status}</span></dd></div>
      <div><dt>Model</dt><dd><code>${run.model || '–'}</code></dd></div>
      <div><dt>Tokens (in / out)</dt><dd>${run.input_tokens} / ${run.output_tokens}</dd></div>
      <div><dt>Cost</dt><dd>${money(run.cost_usd)}</dd></div>
      <div><dt>Duration</dt><dd>${seconds(run.duration_s)}</dd></div>
      <div><dt>Started</dt><dd>${when(run.started)}</dd></div>
    </dl>
    ${run.error ? html`<div class="error" role="alert">${run.error}</div>` : null}
    ${run.question ? html`<p><strong>Question:</strong> ${run.question}</p>` : null}
    <h2>Spans (${run.span_count})</h2>
    <ul class="tree root">${run.spans.map((s) => html`<${Span} span=${s} origin=${origin} total=${total} depth=${0} />`)}</ul>
  </section>`;
}
