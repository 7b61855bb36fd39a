// Copilots: the list, a new copilot from a template, and the editor (instructions,
// model policy, knowledge, tools) that saves through PATCH /api/copilots/{name}/files.
// copilot.yaml is edited as a YAML document (the `yaml` package keeps its comments);
// the server validates the result, and its located problems are shown at the fields
// they name. Nothing typed is lost on an error.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { parseDocument, stringify, parse } from 'yaml';
import { api, upload } from '../api.js';
import { html, ErrorBox, Notice, Loading, go } from '../ui.js';

export function CopilotsView({ me, rest }) {
  if (rest[0] === 'new') return html`<${NewCopilot} me=${me} />`;
  if (rest[0]) return html`<${CopilotEditor} me=${me} name=${rest[0]} />`;
  return html`<${CopilotList} me=${me} />`;
}

function CopilotList({ me }) {
  const [copilots, setCopilots] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api('/api/copilots').then((b) => setCopilots(b.copilots), setError);
  }, []);
  return html`<section>
    <div class="heading-row">
      <h1>Copilots</h1>
      <button type="button" onClick=${() => go('copilots/new')} disabled=${!me.uploads}>New copilot</button>
    </div>
    ${!me.uploads ? html`<${Notice}>This server runs with <code>--no-auth</code>: copilots cannot be created or changed here. Serve with API keys to edit them in the Studio.<//>` : null}
    <${ErrorBox} error=${error} />
    ${copilots === null && !error ? html`<${Loading} what="copilots" />` : null}
    ${copilots && copilots.length === 0 ? html`<p>No copilot is served yet. Create one from a template.</p>` : null}
    ${copilots && copilots.length
      ? html`<table>
          <caption class="sr-only">Served copilots</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Description</th><th scope="col">Models</th><th scope="col">Tools</th><th scope="col">Knowledge</th><th scope="col">Managed</th></tr></thead>
          <tbody>
            ${copilots.map(
              (c) => html`<tr>
                <td><a href=${`#/copilots/${encodeURIComponent(c.name)}`}>${c.name}</a></td>
                <td>${c.description}</td>
                <td>${c.models.join(' → ') || 'default'}</td>
                <td>${c.tools.join(', ') || '–'}</td>
                <td>${c.knowledge ? 'yes' : 'no'}</td>
                <td>${c.managed ? 'yes' : html`<span title="served from a folder given to pilothouse serve">no</span>`}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : null}
  </section>`;
}

// --- a new copilot from a template -----------------------------------------------------

function withoutCode(files, code) {
  // Leave out the tools: entries the server would refuse, and the files they name.
  const doc = parseDocument(files['copilot.yaml']);
  const tools = doc.get('tools');
  const dropped = new Set(code.map((p) => Number(p.field.split('.')[1])));
  const named = [];
  if (tools && tools.items) {
    tools.items.forEach((item, index) => {
      if (dropped.has(index)) {
        const python = item.get ? item.get('python') : null;
        if (typeof python === 'string' && python.endsWith('.py')) named.push(python);
      }
    });
    tools.items = tools.items.filter((_, index) => !dropped.has(index));
    if (!tools.items.length) doc.delete('tools');
  }
  const kept = { ...files, 'copilot.yaml': doc.toString() };
  for (const path of named) delete kept[path];
  return kept;
}

function NewCopilot({ me }) {
  const [name, setName] = useState('');
  const [templates, setTemplates] = useState(null);
  const [chosen, setChosen] = useState('starter');
  const [error, setError] = useState(null);
  const [progress, setProgress] = useState(null);
  const valid = /^[a-z0-9][a-z0-9_-]{0,62}$/.test(name);

  useEffect(() => {
    if (!valid) return;
    const timer = setTimeout(() => {
      api(`/api/templates?name=${encodeURIComponent(name)}`).then((b) => setTemplates(b.templates), setError);
    }, 200);
    return () => clearTimeout(timer);
  }, [name]);

  const template = templates && templates.find((t) => t.name === chosen);
  const create = async (event) => {
    event.preventDefault();
    setError(null);
    let files = Object.fromEntries(template.files.map((f) => [f.path, f.content]));
    if (template.code.length) files = withoutCode(files, template.code);
    const form = new FormData();
    for (const [path, content] of Object.entries(files)) {
      form.append('files', new Blob([content], { type: 'application/octet-stream' }), path);
    }
    setProgress('Uploading…');
    try {
      await upload('/api/copilots', form, {
        onProgress: (sent, total) => setProgress(`Uploading… ${Math.round((100 * sent) / total)}%`),
        onSent: () => setProgress('Indexing its knowledge and opening it…'),
      });
      go(`copilots/${name}`);
    } catch (err) {
      setError(err);
      setProgress(null);
    }
  };

  return html`<section>
    <h1>New copilot</h1>
    <form onSubmit=${create} class="stack">
      <div class="field">
        <label for="new-name">Name</label>
        <input id="new-name" value=${name} onInput=${(e) => setName(e.target.value.trim())} required
          aria-describedby="new-name-help" aria-invalid=${name && !valid ? 'true' : 'false'} />
        <small id="new-name-help">1–63 lowercase letters, digits, - or _ (it is the model name clients use).</small>
      </div>
      <div class="field">
        <label for="new-template">Template</label>
        <select id="new-template" value=${chosen} onChange=${(e) => setChosen(e.target.value)}>
          ${(templates || [{ name: 'starter' }]).map((t) => html`<option value=${t.name}>${t.name}</option>`)}
        </select>
        ${template ? html`<small>${template.description}</small>` : null}
      </div>
      ${template && template.code.length
        ? html`<${Notice} kind="warn">This server does not accept uploaded code (serve with <code>--allow-code-upload</code> to allow it),
            so the template's ${template.code.map((p) => p.field).join(', ')} (${template.code.map((p) => p.message).join('; ')}) will be left out.<//>`
        : null}
      ${template
        ? html`<details><summary>Files (${template.files.length})</summary><ul>${template.files.map((f) => html`<li><code>${f.path}</code></li>`)}</ul></details>`
        : null}
      <div><button type="submit" disabled=${!valid || !template || progress !== null || !me.uploads}>Create</button></div>
      ${progress ? html`<p role="status">${progress}</p>` : null}
    </form>
    <${ErrorBox} error=${error} title="Not created" />
  </section>`;
}

// --- the editor --------------------------------------------------------------------------

const lines = (value) => (Array.isArray(value) ? value.join('\n') : '');
const list = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);

function formOf(text) {
  const doc = parseDocument(text);
  const get = (...path) => doc.getIn(path);
  const tools = doc.get('tools');
  return {
    description: get('description') ?? '',
    primary: get('model', 'primary') ?? '',
    fallbacks: lines(doc.getIn(['model', 'fallbacks'])?.toJSON?.() ?? []),
    temperature: get('model', 'options', 'temperature') ?? '',
    sources: lines(doc.getIn(['knowledge', 'sources'])?.toJSON?.() ?? []),
    mode: get('knowledge', 'retrieval', 'mode') ?? 'hybrid',
    top_k: get('knowledge', 'retrieval', 'top_k') ?? '',
    grounding: get('knowledge', 'grounding') ?? 'strict',
    hasKnowledge: doc.has('knowledge'),
    tools: tools ? stringify(tools.toJSON()) : '',
  };
}

function applyForm(text, form) {
  const doc = parseDocument(text);
  const set = (path, value) => {
    if (value === '' || value === null || value === undefined || (Array.isArray(value) && !value.length)) {
      if (doc.hasIn(path)) doc.deleteIn(path);
    } else {
      doc.setIn(path, value);
    }
  };
  set(['description'], form.description);
  set(['model', 'primary'], form.primary);
  set(['model', 'fallbacks'], list(form.fallbacks));
  const temperature = form.temperature === '' ? '' : Number(form.temperature);
  set(['model', 'options', 'temperature'], Number.isNaN(temperature) ? form.temperature : temperature);
  if (form.hasKnowledge || list(form.sources).length) {
    set(['knowledge', 'sources'], list(form.sources));
    set(['knowledge', 'retrieval', 'mode'], form.mode);
    const topK = form.top_k === '' ? '' : Number(form.top_k);
    set(['knowledge', 'retrieval', 'top_k'], Number.isNaN(topK) ? form.top_k : topK);
    set(['knowledge', 'grounding'], form.grounding);
  }
  const tools = form.tools.trim() ? parse(form.tools) : null;
  set(['tools'], tools);
  return doc.toString();
}

// Which form field a problem's `field` (model.primary, knowledge.sources.0, tools.1...)
// belongs to; problems of other fields are listed above the form.
const FIELD_OF = [
  ['description', 'description'],
  ['model.primary', 'primary'],
  ['model.fallbacks', 'fallbacks'],
  ['model.options', 'temperature'],
  ['model', 'primary'],
  ['knowledge.sources', 'sources'],
  ['knowledge.retrieval.top_k', 'top_k'],
  ['knowledge.retrieval.mode', 'mode'],
  ['knowledge.retrieval', 'top_k'],
  ['knowledge.grounding', 'grounding'],
  ['knowledge', 'sources'],
  ['tools', 'tools'],
];

function placeProblems(problems, instructionsPath) {
  const at = {};
  const other = [];
  for (const problem of problems) {
    let key = null;
    if (problem.file && instructionsPath && problem.file.endsWith(instructionsPath)) key = 'instructions';
    else if (problem.field) {
      const hit = FIELD_OF.find(([prefix]) => problem.field === prefix || problem.field.startsWith(`${prefix}.`));
      if (hit) key = hit[1];
    }
    if (key) (at[key] = at[key] || []).push(problem);
    else other.push(problem);
  }
  return { at, other };
}

function FieldProblems({ id, problems }) {
  if (!problems || !problems.length) return null;
  return html`<ul class="field-problems" id=${id} role="alert">
    ${problems.map((p) => html`<li>${p.line ? html`<code>line ${p.line}</code> ` : null}${p.field ? html`<strong>${p.field}</strong>: ` : null}${p.message}</li>`)}
  </ul>`;
}

function Field({ id, label, help, problems, children }) {
  return html`<div class=${`field${problems && problems.length ? ' invalid' : ''}`}>
    <label for=${id}>${label}</label>
    ${children}
    ${help ? html`<small>${help}</small>` : null}
    <${FieldProblems} id=${`${id}-problems`} problems=${problems} />
  </div>`;
}

function CopilotEditor({ me, name }) {
  const [detail, setDetail] = useState(null);
  const [yamlText, setYamlText] = useState(null);
  const [instructions, setInstructions] = useState(null);
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);
  const [busy, setBusy] = useState(false);
  const [raw, setRaw] = useState(false);
  const [rawText, setRawText] = useState('');

  const instructionsPath = detail && typeof detail.definition.instructions === 'string' && !detail.definition.instructions.includes('\n')
    && detail.files.includes(detail.definition.instructions) ? detail.definition.instructions : null;

  const load = async () => {
    const d = await api(`/api/copilots/${encodeURIComponent(name)}`);
    const text = await api(`/api/copilots/${encodeURIComponent(name)}/files/copilot.yaml`, { raw: true });
    const path = typeof d.definition.instructions === 'string' && d.files.includes(d.definition.instructions) ? d.definition.instructions : null;
    const prompt = path ? await api(`/api/copilots/${encodeURIComponent(name)}/files/${path.split('/').map(encodeURIComponent).join('/')}`, { raw: true }) : null;
    setDetail(d);
    setYamlText(text);
    setRawText(text);
    setForm(formOf(text));
    setInstructions(prompt);
  };
  useEffect(() => {
    load().catch(setError);
  }, [name]);

  const placed = useMemo(() => placeProblems(error?.problems || [], instructionsPath), [error, instructionsPath]);
  if (!detail || !form) return html`<section><h1>${name}</h1>${error ? html`<${ErrorBox} error=${error} />` : html`<${Loading} what="the copilot" />`}</section>`;

  const editable = detail.managed && me.uploads;
  const set = (key) => (event) => setForm({ ...form, [key]: event.target.value });
  const problemsOf = (key) => placed.at[key];
  const described = (key) => (problemsOf(key) ? `${key}-problems` : undefined);

  const save = async (event) => {
    event.preventDefault();
    setBusy(true);
    setSaved(null);
    setError(null);
    let text;
    try {
      text = raw ? rawText : applyForm(yamlText, form);
    } catch (err) {
      setError({ message: `The tools are not valid YAML: ${err.message}`, problems: [{ field: 'tools', message: err.message }] });
      setBusy(false);
      return;
    }
    const files = { 'copilot.yaml': text };
    if (instructionsPath && instructions !== null) files[instructionsPath] = instructions;
    try {
      const d = await api(`/api/copilots/${encodeURIComponent(name)}/files`, { method: 'PATCH', json: { files } });
      setDetail(d);
      setYamlText(text);
      setRawText(text);
      setForm(formOf(text));
      setSaved('Saved: the copilot was validated and is serving the new version.');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const status = detail.status || {};
  return html`<section>
    <div class="heading-row">
      <h1>${name}</h1>
      <span>
        <a href=${`#/playground/${encodeURIComponent(name)}`}>Try it in the playground</a>
        ${detail.knowledge ? html` · <a href=${`#/knowledge/${encodeURIComponent(name)}`}>Its knowledge</a>` : null}
      </span>
    </div>
    <p class="meta">${[
      `Models: ${detail.models.join(' → ') || 'default'}`,
      `Tools: ${detail.tools.join(', ') || 'none'}`,
      status.knowledge ? `${status.knowledge.documents} documents, ${status.knowledge.chunks} passages` : 'no knowledge',
      `${status.pending_approvals} pending approvals`,
    ].join(' · ')}</p>
    ${!detail.managed ? html`<${Notice}>This copilot is served from <code>${detail.folder}</code>, a folder given to <code>pilothouse serve</code>: edit its files there and restart the server. The Studio shows it read-only.<//>` : null}
    ${detail.managed && !me.uploads ? html`<${Notice}>Under <code>--no-auth</code> copilots are read-only in the Studio.<//>` : null}
    <${ErrorBox} error=${error && (placed.other.length || !(error.problems || []).length) ? { ...error, problems: placed.other } : null} title="Not saved" />
    ${error && !placed.other.length && (error.problems || []).length ? html`<div class="error" role="alert"><strong>Not saved: </strong>${error.message} The problems are shown at their fields below.</div>` : null}
    ${saved ? html`<${Notice} kind="ok">${saved}<//>` : null}
    <form onSubmit=${save} class="editor">
      <fieldset disabled=${!editable}>
        <div class="tabs" role="group" aria-label="Editor mode">
          <button type="button" aria-pressed=${!raw} onClick=${() => { if (raw) { try { setForm(formOf(rawText)); setYamlText(rawText); } catch (e) { setError(e); return; } } setRaw(false); }}>Form</button>
          <button type="button" aria-pressed=${raw} onClick=${() => { if (!raw) { try { setRawText(applyForm(yamlText, form)); } catch (e) { setError(e); return; } } setRaw(true); }}>copilot.yaml</button>
        </div>
        ${raw
          ? html`<${Field} id="raw-yaml" label="copilot.yaml" problems=${error?.problems}>
              <textarea id="raw-yaml" class="mono" rows="24" value=${rawText} onInput=${(e) => setRawText(e.target.value)} spellcheck="false"></textarea>
            <//>`
          : html`
          <${Field} id="description" label="Description" problems=${problemsOf('description')}>
            <input id="description" value=${form.description} onInput=${set('description')} aria-describedby=${described('description')} />
          <//>
          <h2>Instructions</h2>
          ${instructionsPath
            ? html`<${Field} id="instructions" label=${`Instructions (${instructionsPath})`} problems=${problemsOf('instructions')}
                help="A Prompty file: front matter between --- lines, then the system prompt.">
                <textarea id="instructions" class="mono" rows="12" value=${instructions} onInput=${(e) => setInstructions(e.target.value)} spellcheck="false" aria-describedby=${described('instructions')}></textarea>
              <//>`
            : html`<p>The instructions are written in copilot.yaml itself: edit them in the copilot.yaml tab.</p>`}
          <h2>Model policy</h2>
          <div class="grid">
            <${Field} id="primary" label="Primary model" problems=${problemsOf('primary')} help="provider:model, e.g. openai:gpt-4.1-mini; empty: the server's default model">
              <input id="primary" value=${form.primary} onInput=${set('primary')} aria-describedby=${described('primary')} spellcheck="false" />
            <//>
            <${Field} id="fallbacks" label="Fallbacks (one per line, in order)" problems=${problemsOf('fallbacks')}>
              <textarea id="fallbacks" rows="3" value=${form.fallbacks} onInput=${set('fallbacks')} aria-describedby=${described('fallbacks')} spellcheck="false"></textarea>
            <//>
            <${Field} id="temperature" label="Temperature" problems=${problemsOf('temperature')}>
              <input id="temperature" value=${form.temperature} onInput=${set('temperature')} inputmode="decimal" aria-describedby=${described('temperature')} />
            <//>
          </div>
          <h2>Knowledge</h2>
          <div class="grid">
            <${Field} id="sources" label="Sources (folders or globs in the copilot folder, one per line)" problems=${problemsOf('sources')}>
              <textarea id="sources" rows="3" value=${form.sources} onInput=${set('sources')} aria-describedby=${described('sources')} spellcheck="false"></textarea>
            <//>
            <${Field} id="mode" label="Retrieval" problems=${problemsOf('mode')}>
              <select id="mode" value=${form.mode} onChange=${set('mode')}>
                <option value="hybrid">hybrid (keywords and meaning)</option>
                <option value="bm25">bm25 (keywords)</option>
                <option value="dense">dense (meaning)</option>
              </select>
            <//>
            <${Field} id="top_k" label="Passages per question (top_k)" problems=${problemsOf('top_k')}>
              <input id="top_k" value=${form.top_k} onInput=${set('top_k')} inputmode="numeric" aria-describedby=${described('top_k')} />
            <//>
            <${Field} id="grounding" label="Grounding" problems=${problemsOf('grounding')}>
              <select id="grounding" value=${form.grounding} onChange=${set('grounding')}>
                <option value="strict">strict (answer only from the passages)</option>
                <option value="prefer">prefer</option>
                <option value="off">off</option>
              </select>
            <//>
          </div>
          <h2>Tools</h2>
          <${Field} id="tools" label="tools: (YAML list of tool sources)" problems=${problemsOf('tools')}
            help="python, openapi, mcp or connector entries; see docs/tools.md">
            <textarea id="tools" class="mono" rows="6" value=${form.tools} onInput=${set('tools')} aria-describedby=${described('tools')} spellcheck="false"></textarea>
          <//>`}
        <div class="actions"><button type="submit" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button></div>
      </fieldset>
    </form>
    <details>
      <summary>Files (${detail.files.length})</summary>
      <ul>${detail.files.map((f) => html`<li><code>${f}</code></li>`)}</ul>
    </details>
  </section>`;
}
