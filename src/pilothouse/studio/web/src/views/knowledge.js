// Knowledge: a knowledge base's figures, uploads with progress and a result per file,
// its documents and their passages, and a search box with scores and sources.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, upload } from '../api.js';
import { html, ErrorBox, Notice, Loading, go, number } from '../ui.js';

export function basePath(copilot) {
  return copilot ? `/api/copilots/${encodeURIComponent(copilot)}/knowledge` : '/api/knowledge';
}

export function KnowledgeView({ me, rest }) {
  const copilot = rest[0] || '';
  const [copilots, setCopilots] = useState([]);
  const [stats, setStats] = useState(null);
  const [documents, setDocuments] = useState(null);
  const [error, setError] = useState(null);
  const [opened, setOpened] = useState(null);
  const base = basePath(copilot);

  const refresh = () =>
    Promise.all([api(base), api(`${base}/documents`)])
      .then(([s, d]) => {
        setStats(s);
        setDocuments(d.documents);
        setError(null);
      })
      .catch(setError);

  useEffect(() => {
    api('/api/copilots').then((b) => setCopilots(b.copilots.filter((c) => c.knowledge)), () => {});
  }, []);
  useEffect(() => {
    setStats(null);
    setDocuments(null);
    setOpened(null);
    refresh();
  }, [copilot]);

  const remove = async (doc) => {
    if (!confirm(`Remove ${doc.title || doc.source} from the knowledge base?`)) return;
    try {
      await api(`${base}/documents/${doc.id}`, { method: 'DELETE' });
      refresh();
    } catch (err) {
      setError(err);
    }
  };

  return html`<section>
    <div class="heading-row">
      <h1>Knowledge</h1>
      <label class="inline">Knowledge base
        <select value=${copilot} onChange=${(e) => go(e.target.value ? `knowledge/${e.target.value}` : 'knowledge')}>
          <option value="">default (data directory)</option>
          ${copilots.map((c) => html`<option value=${c.name}>copilot ${c.name}</option>`)}
        </select>
      </label>
    </div>
    <${ErrorBox} error=${error} />
    ${stats
      ? html`<p class="meta">${stats.documents} documents · ${stats.chunks} passages · ${stats.tokens} tokens · index ${Math.round(stats.bytes / 1024)} KiB · embeddings: ${stats.embedding_model || '–'}</p>`
      : null}
    <${Upload} base=${base} me=${me} onDone=${refresh} />
    <${Search} base=${base} onOpen=${setOpened} />
    <h2>Documents</h2>
    ${documents === null && !error ? html`<${Loading} what="documents" />` : null}
    ${documents && !documents.length ? html`<p>No documents yet: upload some above.</p>` : null}
    ${documents && documents.length
      ? html`<table>
          <thead><tr><th scope="col">Title</th><th scope="col">Source</th><th scope="col">Type</th><th scope="col">Passages</th><th scope="col">Tags</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            ${documents.map(
              (d) => html`<tr>
                <td>${d.title || '–'}</td>
                <td><code>${shortSource(d.source)}</code></td>
                <td>${d.type}</td>
                <td>${d.chunks}</td>
                <td>${(d.tags || []).join(', ')}</td>
                <td class="row-actions">
                  <button type="button" onClick=${() => setOpened({ document: d })}>Passages</button>
                  ${d.uploaded ? html`<button type="button" class="danger" onClick=${() => remove(d)}>Remove</button>` : null}
                </td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : null}
    ${opened && opened.document ? html`<${Chunks} base=${base} document=${opened.document} onClose=${() => setOpened(null)} />` : null}
    ${opened && opened.hit ? html`<${PassageDialog} passage=${opened.hit} onClose=${() => setOpened(null)} />` : null}
  </section>`;
}

export function shortSource(source) {
  const marker = source.indexOf('/uploads/');
  if (marker >= 0) return source.slice(source.indexOf('/', marker + 9) + 1);
  const parts = source.split('/');
  return parts.slice(-2).join('/');
}

function Upload({ base, me, onDone }) {
  const input = useRef(null);
  const [tags, setTags] = useState('');
  const [progress, setProgress] = useState(null);
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);

  const send = async (event) => {
    event.preventDefault();
    const files = input.current.files;
    if (!files.length) return;
    const form = new FormData();
    for (const file of files) form.append('files', file, file.name);
    for (const tag of tags.split(',').map((t) => t.trim()).filter(Boolean)) form.append('tags', tag);
    setError(null);
    setResult(null);
    setProgress({ sent: 0, total: 1, phase: 'Uploading' });
    try {
      const answer = await upload(`${base}/documents`, form, {
        onProgress: (sent, total) => setProgress({ sent, total, phase: 'Uploading' }),
        onSent: () => setProgress({ sent: 1, total: 1, phase: 'Reading, chunking and embedding' }),
      });
      setResult(answer);
      input.current.value = '';
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setProgress(null);
    }
  };

  if (!me.uploads) {
    return html`<${Notice}>Uploads are off under <code>--no-auth</code> (a web page could send them): serve with API keys to upload here, or put files in a copilot's knowledge folder.<//>`;
  }
  return html`<form class="upload" onSubmit=${send}>
    <h2>Upload</h2>
    <div class="row">
      <div class="field">
        <label for="upload-files">Files (PDF, DOCX, HTML, Markdown, text, CSV, JSON)</label>
        <input id="upload-files" ref=${input} type="file" multiple />
      </div>
      <div class="field">
        <label for="upload-tags">Tags (comma-separated, optional)</label>
        <input id="upload-tags" value=${tags} onInput=${(e) => setTags(e.target.value)} />
      </div>
      <button type="submit" disabled=${progress !== null}>Upload</button>
    </div>
    ${progress
      ? html`<div class="progress" role="status">
          <label for="upload-progress">${progress.phase}…</label>
          <progress id="upload-progress" max=${progress.total} value=${progress.phase === 'Uploading' ? progress.sent : undefined}></progress>
        </div>`
      : null}
    <${ErrorBox} error=${error} title="Upload failed" />
    ${result
      ? html`<table class="results" aria-label="Upload results">
          <thead><tr><th scope="col">File</th><th scope="col">Outcome</th><th scope="col">Passages</th><th scope="col">Why</th></tr></thead>
          <tbody>
            ${result.files.map(
              (f) => html`<tr class=${f.status === 'failed' ? 'failed' : ''}>
                <td><code>${f.source}</code></td><td>${f.status}</td><td>${f.chunks}</td><td>${f.reason}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : null}
  </form>`;
}

function Search({ base, onOpen }) {
  const [query, setQuery] = useState('');
  const [mode, setMode] = useState('hybrid');
  const [topK, setTopK] = useState(5);
  const [results, setResults] = useState(null);
  const [error, setError] = useState(null);
  const search = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const body = await api(`${base}/search`, { method: 'POST', json: { query, mode, top_k: Number(topK) } });
      setResults(body.results);
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="search" onSubmit=${search} role="search">
    <h2>Search</h2>
    <div class="row">
      <div class="field grow">
        <label for="search-query">Question or keywords</label>
        <input id="search-query" type="search" value=${query} onInput=${(e) => setQuery(e.target.value)} required />
      </div>
      <div class="field">
        <label for="search-mode">Mode</label>
        <select id="search-mode" value=${mode} onChange=${(e) => setMode(e.target.value)}>
          <option value="hybrid">hybrid</option><option value="bm25">bm25</option><option value="dense">dense</option>
        </select>
      </div>
      <div class="field">
        <label for="search-k">Results</label>
        <input id="search-k" type="number" min="1" max="100" value=${topK} onInput=${(e) => setTopK(e.target.value)} />
      </div>
      <button type="submit">Search</button>
    </div>
    <${ErrorBox} error=${error} />
    ${results && !results.length ? html`<p>Nothing found.</p>` : null}
    ${results && results.length
      ? html`<ol class="hits">
          ${results.map(
            (r) => html`<li>
              <div class="hit-head">
                <strong>${r.title || shortSource(r.source)}</strong>
                ${r.headings.length ? html` › ${r.headings.join(' › ')}` : null}
                ${r.page ? html` · page ${r.page}` : null}
                <span class="score" title="each method's own score">score ${number(r.score)} (${Object.entries(r.scores).map(([k, v]) => `${k} ${number(v)}`).join(', ')})</span>
              </div>
              <p class="snippet">${r.text.length > 300 ? `${r.text.slice(0, 300)}…` : r.text}</p>
              <small><code>${shortSource(r.source)}</code> · <button type="button" class="link" onClick=${() => onOpen({ hit: r })}>Open passage</button></small>
            </li>`,
          )}
        </ol>`
      : null}
  </form>`;
}

// A modal dialog (native <dialog>: focus kept inside, Esc closes).
export function Dialog({ title, onClose, children }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog.open) dialog.showModal();
    const closed = () => onClose();
    dialog.addEventListener('close', closed);
    return () => dialog.removeEventListener('close', closed);
  }, []);
  return html`<dialog ref=${ref} aria-labelledby="dialog-title" class="dialog">
    <div class="dialog-head">
      <h2 id="dialog-title">${title}</h2>
      <button type="button" onClick=${() => ref.current.close()} aria-label="Close">✕</button>
    </div>
    <div class="dialog-body">${children}</div>
  </dialog>`;
}

export function PassageDialog({ passage, onClose, note }) {
  return html`<${Dialog} title=${passage.title || shortSource(passage.source)} onClose=${onClose}>
    <p class="meta"><code>${shortSource(passage.source)}</code>${passage.headings && passage.headings.length ? html` › ${passage.headings.join(' › ')}` : null}${passage.page ? html` · page ${passage.page}` : null}
      ${passage.start !== undefined ? html` · characters ${passage.start}–${passage.end}` : null}</p>
    ${note ? html`<${Notice}>${note}<//>` : null}
    <blockquote class="passage">${passage.text}</blockquote>
  <//>`;
}

function Chunks({ base, document, onClose }) {
  const [chunks, setChunks] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api(`${base}/documents/${document.id}/chunks?limit=200`).then(setChunks, setError);
  }, [document.id]);
  return html`<${Dialog} title=${`Passages of ${document.title || shortSource(document.source)}`} onClose=${onClose}>
    <${ErrorBox} error=${error} />
    ${chunks === null && !error ? html`<${Loading} what="passages" />` : null}
    ${chunks
      ? html`<p class="meta">${chunks.total} passages${chunks.total > chunks.chunks.length ? `, the first ${chunks.chunks.length} shown` : ''}</p>
        <ol class="chunks">
          ${chunks.chunks.map(
            (c) => html`<li>
              <div class="hit-head">${c.headings.join(' › ') || '(no heading)'}${c.page ? ` · page ${c.page}` : ''} <small>#${c.chunk_id}</small></div>
              <p class="snippet">${c.text}</p>
            </li>`,
          )}
        </ol>`
      : null}
  <//>`;
}
