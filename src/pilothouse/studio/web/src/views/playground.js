// The playground: streaming chat with any copilot, route or model this key may use
// (GET /v1/models), chosen per message to compare; citations that open the cited
// passage, tool calls inline, pending approvals decided in place (scope
// approve:<copilot>), a link to each run's trace. If the server goes away mid-answer,
// the text so far stays and the question goes back into the box.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, allows, streamChat, ConnectionLost } from '../api.js';
import { html, ErrorBox, Markdown, JsonView, Notice, seconds, money } from '../ui.js';
import { PassageDialog } from './knowledge.js';

const APPROVAL_NOTE = 'Waiting for approval before going on:';
let counter = 0;
const nextId = () => `m${++counter}`;

function fromExtension(message, ext) {
  // The extension of a streamed answer (or of a resumed run's JSON answer) into the
  // message shape the view shows.
  message.runId = ext.run_id;
  message.conversationId = ext.conversation_id;
  message.model = ext.model;
  message.status = ext.status;
  message.citations = ext.citations || [];
  message.usage = ext.usage || null;
  message.cost = ext.cost_usd;
  message.error = ext.error;
  message.pending = ext.pending_approvals || [];
  const known = new Map((message.tools || []).map((t) => [t.id, t]));
  for (const t of ext.tool_calls || []) known.set(t.id, { ...known.get(t.id), ...t, done: true });
  message.tools = [...known.values()];
  if (message.status === 'awaiting_approval') {
    const cut = message.text.indexOf(APPROVAL_NOTE);
    if (cut >= 0) message.text = message.text.slice(0, cut).trimEnd();
  }
  return message;
}

function fromAnswer(answer, copilot) {
  // POST /api/approvals/{run_id} answers with AnswerOut.
  return fromExtension(
    { role: 'assistant', target: copilot, copilot, text: answer.text, tools: [] },
    {
      run_id: answer.run_id,
      conversation_id: answer.conversation_id,
      model: answer.model,
      status: answer.status,
      citations: answer.citations,
      usage: answer.usage,
      cost_usd: answer.cost_usd,
      error: answer.error,
      pending_approvals: answer.pending.map((c) => ({ run_id: answer.run_id, call_id: c.id, name: c.name, arguments: c.arguments, description: '' })),
      tool_calls: answer.tool_calls.map((t) => ({ ...t.call, result: t.content, is_error: t.is_error, approved: t.approved, duration_s: t.duration_s })),
    },
  );
}

export function PlaygroundView({ me, rest }) {
  const [targets, setTargets] = useState(null);
  const [target, setTarget] = useState(rest[0] || '');
  const [messages, setMessages] = useState([]);
  const [question, setQuestion] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [passage, setPassage] = useState(null);
  const conversations = useRef({});
  const box = useRef(null);
  const log = useRef(null);

  useEffect(() => {
    api('/v1/models')
      .then((b) => {
        setTargets(b.data);
        if (!target && b.data.length) {
          const copilot = b.data.find((m) => m.owned_by === 'pilothouse-copilot');
          setTarget((copilot || b.data[0]).id);
        }
      })
      .catch(setError);
  }, []);
  useEffect(() => {
    if (log.current) log.current.scrollTop = log.current.scrollHeight;
  }, [messages]);

  const isCopilot = (id) => (targets || []).some((m) => m.id === id && m.owned_by === 'pilothouse-copilot');
  const update = (message) => setMessages((all) => all.map((m) => (m.id === message.id ? { ...message } : m)));

  const send = async (text, to) => {
    if (!text.trim() || !to) return;
    setError(null);
    setBusy(true);
    const copilot = isCopilot(to) ? to : null;
    const user = { id: nextId(), role: 'user', text, target: to };
    const answer = { id: nextId(), role: 'assistant', target: to, copilot, text: '', tools: [], citations: [], pending: [], streaming: true };
    const history = copilot
      ? []
      : messages.filter((m) => m.target === to && !m.failed).map((m) => ({ role: m.role, content: m.text }));
    setMessages((all) => [...all, user, answer]);
    setQuestion('');
    const body = { model: to, messages: [...history, { role: 'user', content: text }] };
    if (copilot && conversations.current[copilot]) body.pilothouse = { conversation_id: conversations.current[copilot] };
    try {
      await streamChat(body, (chunk) => {
        const delta = chunk.choices && chunk.choices[0] ? chunk.choices[0].delta || {} : {};
        if (delta.content) answer.text += delta.content;
        const ext = chunk.pilothouse;
        if (ext && ext.event === 'tool_call_started') answer.tools = [...answer.tools, { ...ext.call, done: false }];
        else if (ext && ext.event === 'tool_call_finished') {
          const outcome = ext.outcome;
          answer.tools = answer.tools.map((t) => (t.id === outcome.id ? { ...t, ...outcome, done: true } : t));
          if (!answer.tools.some((t) => t.id === outcome.id)) answer.tools = [...answer.tools, { ...outcome, done: true }];
        } else if (ext && ext.run_id) fromExtension(answer, ext);
        if (!copilot && chunk.model) answer.model = chunk.model;
        update(answer);
      });
      answer.streaming = false;
      if (copilot && answer.conversationId) conversations.current[copilot] = answer.conversationId;
      update(answer);
    } catch (err) {
      answer.streaming = false;
      answer.failed = true;
      answer.failure = err;
      update(answer);
      setQuestion((current) => current || text); // nothing typed is lost
    } finally {
      setBusy(false);
      box.current && box.current.focus();
    }
  };

  const submit = (event) => {
    event.preventDefault();
    send(question, target);
  };
  const keydown = (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) submit(event);
  };

  const decide = async (message, approve) => {
    const runId = message.pending[0].run_id || message.runId;
    const ids = message.pending.map((p) => p.call_id);
    message.deciding = true;
    update(message);
    try {
      const answer = await api(`/api/approvals/${encodeURIComponent(runId)}`, {
        method: 'POST',
        json: approve ? { approve: ids } : { deny: ids, note: 'denied in the Studio' },
      });
      message.decided = approve ? 'approved' : 'denied';
      message.deciding = false;
      update(message);
      const resumed = { id: nextId(), ...fromAnswer(answer, message.copilot) };
      setMessages((all) => [...all, resumed]);
    } catch (err) {
      message.deciding = false;
      message.decisionError = err;
      update(message);
    }
  };

  const openCitation = async (message, number) => {
    const citation = message.citations.find((c) => c.number === number);
    if (!citation) return;
    const fallback = { ...citation, text: citation.snippet };
    if (citation.chunk_id !== undefined && citation.chunk_id !== null && allows(me, 'admin') && message.copilot) {
      try {
        const chunk = await api(`/api/copilots/${encodeURIComponent(message.copilot)}/knowledge/chunks/${citation.chunk_id}`);
        setPassage({ passage: { ...chunk, number } });
        return;
      } catch (err) {
        setPassage({ passage: fallback, note: `The whole passage could not be read (${err.message}); its excerpt:` });
        return;
      }
    }
    setPassage({ passage: fallback, note: allows(me, 'admin') ? null : 'The excerpt the answer cites (reading whole passages needs an admin key):' });
  };

  return html`<section class="playground">
    <div class="heading-row">
      <h1>Playground</h1>
      <button type="button" onClick=${() => { setMessages([]); conversations.current = {}; }} disabled=${busy}>New conversation</button>
    </div>
    <${ErrorBox} error=${error} />
    <div class="chat-log" ref=${log} aria-live="polite" aria-label="Conversation">
      ${messages.length === 0 ? html`<p class="hint">Ask a question. Choose a copilot, a route or a model for each message, to compare their answers.</p>` : null}
      ${messages.map((m) =>
        m.role === 'user'
          ? html`<div class="msg user"><div class="who">You → <strong>${m.target}</strong>
              ${m.target !== target
                ? html`<button type="button" class="link" disabled=${busy} onClick=${() => send(m.text, target)}
                    title="send this question again to the target chosen below, to compare">ask ${target} too</button>`
                : null}</div>
              <p>${m.text}</p></div>`
          : html`<${AssistantMessage} message=${m} me=${me} onDecide=${decide} onCite=${(n) => openCitation(m, n)} />`,
      )}
    </div>
    <form class="composer" onSubmit=${submit}>
      <div class="field">
        <label for="target">Ask</label>
        <select id="target" value=${target} onChange=${(e) => setTarget(e.target.value)}>
          ${(targets || []).map((m) => html`<option value=${m.id}>${m.id}${m.owned_by === 'pilothouse-copilot' ? ' (copilot)' : m.owned_by === 'pilothouse-route' ? ' (route)' : ''}</option>`)}
        </select>
      </div>
      <div class="field grow">
        <label for="question">Message <small>(Ctrl+Enter sends)</small></label>
        <textarea id="question" ref=${box} rows="2" value=${question} onInput=${(e) => setQuestion(e.target.value)} onKeyDown=${keydown}></textarea>
      </div>
      <button type="submit" disabled=${busy || !question.trim() || !target}>${busy ? 'Answering…' : 'Send'}</button>
    </form>
    ${passage ? html`<${PassageDialog} passage=${passage.passage} note=${passage.note} onClose=${() => setPassage(null)} />` : null}
  </section>`;
}

function AssistantMessage({ message, me, onDecide, onCite }) {
  const m = message;
  const mayDecide = m.copilot && allows(me, `approve:${m.copilot}`);
  return html`<article class=${`msg assistant${m.failed ? ' failed' : ''}`} aria-busy=${m.streaming ? 'true' : 'false'}>
    <div class="who">
      <strong>${m.target}</strong>${m.model && m.model !== m.target ? html` · answered by <code>${m.model}</code>` : null}
      ${m.status ? html` · ${m.status}` : null}
      ${m.usage ? html` · ${m.usage.total_tokens ?? (m.usage.input_tokens || 0) + (m.usage.output_tokens || 0)} tokens` : null}
      ${m.cost !== undefined && m.cost !== null ? html` · ${money(m.cost)}` : null}
      ${m.runId && allows(me, 'admin') ? html` · <a href=${`#/traces/${m.runId}`}>trace</a>` : null}
    </div>
    ${m.tools.map(
      (t) => html`<details class=${`tool${t.is_error ? ' tool-error' : ''}`} open=${!t.done}>
        <summary><span class="kind kind-tool">tool</span> <code>${t.name}</code> ${t.done ? (t.is_error ? 'failed' : t.approved === false ? 'denied' : 'done') : 'running…'}${t.duration_s !== undefined ? ` · ${seconds(t.duration_s)}` : ''}</summary>
        <div class="tool-body"><div>Arguments</div><${JsonView} value=${t.arguments || {}} />
        ${t.done ? html`<div>Result</div><pre class="result">${t.result}</pre>` : null}</div>
      </details>`,
    )}
    ${m.text ? html`<${Markdown} text=${m.text} citations=${m.citations} onCite=${onCite} />` : m.streaming ? html`<p class="typing">…</p>` : null}
    ${m.citations.length
      ? html`<div class="citations" aria-label="Sources">
          <span>Sources:</span>
          ${m.citations.map(
            (c) => html`<button type="button" class="chip" onClick=${() => onCite(c.number)}>[${c.number}] ${c.title || c.source}${c.headings && c.headings.length ? ` › ${c.headings[c.headings.length - 1]}` : ''}</button>`,
          )}
        </div>`
      : null}
    ${m.pending.length && !m.decided
      ? html`<div class="approval" role="group" aria-label="Tool calls waiting for approval">
          <p><strong>Waiting for approval:</strong></p>
          <ul>${m.pending.map((p) => html`<li><code>${p.name}</code> ${p.description ? `— ${p.description}` : ''}<${JsonView} value=${p.arguments} /></li>`)}</ul>
          ${mayDecide
            ? html`<button type="button" onClick=${() => onDecide(m, true)} disabled=${m.deciding}>Approve</button>
                <button type="button" class="danger" onClick=${() => onDecide(m, false)} disabled=${m.deciding}>Deny</button>`
            : html`<${Notice}>Deciding needs a key with <code>approve:${m.copilot}</code>: ask an approver (they see it under /api/approvals).<//>`}
          <${ErrorBox} error=${m.decisionError} title="Not decided" />
        </div>`
      : null}
    ${m.decided ? html`<p class="meta">You ${m.decided} the call${m.pending.length > 1 ? 's' : ''}; the run went on below.</p>` : null}
    ${m.error && !m.failed ? html`<${ErrorBox} error=${{ message: m.error }} />` : null}
    ${m.failed
      ? html`<${ErrorBox} error=${m.failure} title=${m.failure instanceof ConnectionLost ? 'Interrupted' : 'Failed'} />
        ${m.text ? html`<p class="meta">The text above is what arrived before the answer broke off; your question is back in the box to send again.</p>` : html`<p class="meta">Your question is back in the box to send again.</p>`}`
      : null}
  </article>`;
}
