// Promotions (stage, gates, report) come with the promotion pipeline's API. Until the
// server's OpenAPI document lists /api/promotions, the view says so plainly.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, ErrorBox, Loading, Notice } from '../ui.js';

export function PromotionsView() {
  const [paths, setPaths] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api('/openapi.json').then((doc) => setPaths(Object.keys(doc.paths || {}).filter((p) => p.startsWith('/api/promotions'))), setError);
  }, []);
  return html`<section>
    <h1>Promotions</h1>
    <${ErrorBox} error=${error} />
    ${paths === null && !error ? html`<${Loading} />` : null}
    ${paths && !paths.length
      ? html`<${Notice}>
          <p><strong>Not available yet.</strong> Moving a copilot to a new model through stages (offline evals, shadow, canary)
          with gates and a report needs the promotion pipeline, which this server does not have yet (no <code>/api/promotions</code>
          in its API).</p>
          <p>Until then, compare models on a copilot's eval suites in <a href="#/evals">Evals</a>.</p>
        <//>`
      : null}
    ${paths && paths.length
      ? html`<${Notice}>This server has a promotion API (${paths.join(', ')}), which this Studio version does not show yet.<//>`
      : null}
  </section>`;
}
