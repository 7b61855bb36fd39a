// Evals (read-only, from `pilothouse eval` runs): the runs, one run's figures per arm
// with their intervals, and two arms compared side by side: a chart of the metric
// means (Chart.js), the paired differences with verdicts, the regressed and improved
// cases with both answers and their traces.
import { useEffect, useRef, useState } from 'preact/hooks';
import { Chart, BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip } from 'chart.js';
import { api } from '../api.js';
import { html, ErrorBox, Loading, number, when } from '../ui.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export function EvalsView() {
  const [runs, setRuns] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(null);
  const [a, setA] = useState('');
  const [b, setB] = useState('');
  useEffect(() => {
    api('/api/evals?limit=50')
      .then((body) => {
        setRuns(body.runs);
        const first = body.runs[0];
        if (first) {
          setSelected(first.run_id);
          const arms = body.runs.flatMap((r) => r.arms.map((arm) => `${r.run_id}@${arm.arm}`));
          setA(arms[0] || '');
          setB(arms[1] || arms[0] || '');
        }
      })
      .catch(setError);
  }, []);
  const sides = (runs || []).flatMap((r) => r.arms.map((arm) => ({ value: `${r.run_id}@${arm.arm}`, label: `${r.copilot} · ${arm.label} (${r.run_id.slice(0, 9)}, ${when(r.created)})` })));
  return html`<section>
    <h1>Evals</h1>
    <${ErrorBox} error=${error} />
    ${runs === null && !error ? html`<${Loading} what="eval runs" />` : null}
    ${runs && !runs.length ? html`<p>No eval runs yet. Run one with <code>pilothouse eval COPILOT -m MODEL -m OTHER</code>; it shows up here.</p>` : null}
    ${runs && runs.length
      ? html`<table>
          <thead><tr><th scope="col">Run</th><th scope="col">Copilot</th><th scope="col">Arms</th><th scope="col">Cases</th><th scope="col">Status</th><th scope="col">Started</th></tr></thead>
          <tbody>
            ${runs.map(
              (r) => html`<tr class=${r.run_id === selected ? 'selected' : ''}>
                <td><button type="button" class="link" aria-pressed=${r.run_id === selected} onClick=${() => setSelected(r.run_id)}><code>${r.run_id.slice(0, 12)}</code></button></td>
                <td>${r.copilot}</td><td>${r.arms.map((arm) => arm.label).join(' vs ')}</td><td>${r.total}</td><td>${r.status}</td><td>${when(r.created)}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : null}
    ${selected ? html`<${RunSummary} runId=${selected} />` : null}
    ${sides.length
      ? html`<h2>Compare</h2>
        <form class="row" onSubmit=${(e) => e.preventDefault()}>
          <div class="field grow"><label for="side-a">A (baseline)</label>
            <select id="side-a" value=${a} onChange=${(e) => setA(e.target.value)}>${sides.map((s) => html`<option value=${s.value}>${s.label}</option>`)}</select></div>
          <div class="field grow"><label for="side-b">B (candidate)</label>
            <select id="side-b" value=${b} onChange=${(e) => setB(e.target.value)}>${sides.map((s) => html`<option value=${s.value}>${s.label}</option>`)}</select></div>
        </form>
        ${a && b ? html`<${Comparison} a=${a} b=${b} />` : null}`
      : null}
  </section>`;
}

function RunSummary({ runId }) {
  const [run, setRun] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { setRun(null); api(`/api/evals/${encodeURIComponent(runId)}`).then(setRun, setError); }, [runId]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!run) return html`<${Loading} what="the run" />`;
  const metrics = [...new Set(run.arms.flatMap((arm) => arm.metrics.map((m) => m.metric)))];
  const cell = (arm, metric) => {
    const m = arm.metrics.find((x) => x.metric === metric);
    if (!m || m.mean === null) return '–';
    return html`${number(m.mean)} <small>[${number(m.low)}, ${number(m.high)}] n=${m.n}</small>`;
  };
  return html`<h2>Run <code>${run.run_id.slice(0, 12)}</code> (${run.copilot}, ${run.status})</h2>
    <table class="figures">
      <thead><tr><th scope="col">Metric</th>${run.arms.map((arm) => html`<th scope="col">${arm.label}</th>`)}</tr></thead>
      <tbody>
        <tr><th scope="row">cases passed / failed / error</th>${run.arms.map((arm) => html`<td>${arm.cases.passed} / ${arm.cases.failed} / ${arm.cases.error}</td>`)}</tr>
        ${metrics.map((metric) => html`<tr><th scope="row">${metric}</th>${run.arms.map((arm) => html`<td>${cell(arm, metric)}</td>`)}</tr>`)}
      </tbody>
    </table>`;
}

function MeansChart({ comparison }) {
  const canvas = useRef(null);
  useEffect(() => {
    const shown = comparison.metrics.filter((m) => m.direction !== 'lower' && m.a !== null && m.b !== null && m.a <= 1 && m.b <= 1 && m.a >= 0 && m.b >= 0);
    const chart = new Chart(canvas.current, {
      type: 'bar',
      data: {
        labels: shown.map((m) => m.metric),
        datasets: [
          { label: `A: ${comparison.a.label}`, data: shown.map((m) => m.a), backgroundColor: '#8aa4c8' },
          { label: `B: ${comparison.b.label}`, data: shown.map((m) => m.b), backgroundColor: '#e0a04a' },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { y: { min: 0, max: 1, title: { display: true, text: 'mean score (0–1)' } } },
        plugins: { legend: { position: 'bottom' } },
      },
    });
    return () => chart.destroy();
  }, [comparison]);
  const described = comparison.metrics.filter((m) => m.direction !== 'lower').map((m) => `${m.metric}: A ${number(m.a)}, B ${number(m.b)}`).join('; ');
  return html`<div class="chart"><canvas ref=${canvas} role="img" aria-label=${`Metric means, A against B: ${described}`}></canvas></div>`;
}

function Change({ item, kind }) {
  return html`<li class=${`change ${kind}`}>
    <div><strong>${item.suite} / ${item.case}</strong>: ${item.question}</div>
    <div class="side-by-side">
      <div><div class="attr-name">A ${item.a.trace_id ? html`· <a href=${`#/traces/${item.a.trace_id}`}>trace</a>` : null}</div><p>${item.a.answer || '–'}</p></div>
      <div><div class="attr-name">B ${item.b.trace_id ? html`· <a href=${`#/traces/${item.b.trace_id}`}>trace</a>` : null}</div><p>${item.b.answer || '–'}</p></div>
    </div>
  </li>`;
}

function Comparison({ a, b }) {
  const [comparison, setComparison] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setComparison(null);
    setError(null);
    api(`/api/evals/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`).then(setComparison, setError);
  }, [a, b]);
  if (error) return html`<${ErrorBox} error=${error} title="No comparison" />`;
  if (!comparison) return html`<${Loading} what="the comparison" />`;
  return html`<div class="comparison">
    <${MeansChart} comparison=${comparison} />
    <table class="figures">
      <thead><tr><th scope="col">Metric</th><th scope="col">A</th><th scope="col">B</th><th scope="col">B − A [95% interval]</th><th scope="col">n</th><th scope="col">p</th><th scope="col">Verdict</th></tr></thead>
      <tbody>
        ${comparison.metrics.map(
          (m) => html`<tr class=${m.verdict === 'worse' ? 'worse' : m.verdict === 'better' ? 'better' : ''}>
            <th scope="row">${m.metric}${m.judge ? html` <small>(${m.judge})</small>` : null}</th>
            <td>${number(m.a)}</td><td>${number(m.b)}</td>
            <td>${number(m.delta)} [${number(m.low)}, ${number(m.high)}]</td><td>${m.n}</td><td>${number(m.p_value)}</td>
            <td>${m.verdict || '–'}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <h3>Regressed cases (${comparison.regressed.length})</h3>
    ${comparison.regressed.length ? html`<ul class="changes">${comparison.regressed.map((c) => html`<${Change} item=${c} kind="worse" />`)}</ul>` : html`<p>None.</p>`}
    <h3>Improved cases (${comparison.improved.length})</h3>
    ${comparison.improved.length ? html`<ul class="changes">${comparison.improved.map((c) => html`<${Change} item=${c} kind="better" />`)}</ul>` : html`<p>None.</p>`}
  </div>`;
}
