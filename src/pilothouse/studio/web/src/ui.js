// Shared pieces: markdown and code rendering (marked, DOMPurify, highlight.js), error
// boxes with located problems, small formatters.
import { h } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import htm from 'htm';
import { Marked } from 'marked';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import json from 'highlight.js/lib/languages/json';
import yamlLanguage from 'highlight.js/lib/languages/yaml';
import python from 'highlight.js/lib/languages/python';
import bash from 'highlight.js/lib/languages/bash';
import markdownLanguage from 'highlight.js/lib/languages/markdown';

export const html = htm.bind(h);

hljs.registerLanguage('json', json);
hljs.registerLanguage('yaml', yamlLanguage);
hljs.registerLanguage('python', python);
hljs.registerLanguage('bash', bash);
hljs.registerLanguage('markdown', markdownLanguage);

const marked = new Marked({ gfm: true, breaks: false });

export function markdownToHtml(text) {
  const rendered = marked.parse(text || '', { async: false });
  return DOMPurify.sanitize(rendered, { USE_PROFILES: { html: true } });
}

function highlightIn(root) {
  for (const block of root.querySelectorAll('pre code')) {
    if (!block.dataset.highlighted) hljs.highlightElement(block);
  }
}

// Citation markers [n] in the text become buttons (not inside code).
function markCitations(root, numbers) {
  if (!numbers.size) return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (/\[\d+\]/.test(node.nodeValue) && !node.parentElement.closest('code, pre, button')) nodes.push(node);
  }
  for (const node of nodes) {
    const pieces = node.nodeValue.split(/(\[\d+\])/);
    const fragment = document.createDocumentFragment();
    for (const piece of pieces) {
      const match = /^\[(\d+)\]$/.exec(piece);
      if (match && numbers.has(Number(match[1]))) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'cite';
        button.dataset.cite = match[1];
        button.textContent = piece;
        button.setAttribute('aria-label', `open source ${match[1]}`);
        fragment.append(button);
      } else if (piece) {
        fragment.append(document.createTextNode(piece));
      }
    }
    node.replaceWith(fragment);
  }
}

export function Markdown({ text, citations = [], onCite }) {
  const ref = useRef(null);
  useEffect(() => {
    const root = ref.current;
    root.innerHTML = markdownToHtml(text);
    highlightIn(root);
    markCitations(root, new Set(citations.map((c) => c.number)));
  }, [text, citations]);
  const click = (event) => {
    const button = event.target.closest('button.cite');
    if (button && onCite) onCite(Number(button.dataset.cite));
  };
  return html`<div class="markdown" ref=${ref} onClick=${click}></div>`;
}

export function Code({ text, language = 'json' }) {
  const ref = useRef(null);
  useEffect(() => {
    const code = ref.current;
    code.textContent = text;
    delete code.dataset.highlighted;
    if (hljs.getLanguage(language)) hljs.highlightElement(code);
  }, [text, language]);
  return html`<pre class="code"><code ref=${ref} class=${`language-${language}`}></code></pre>`;
}

export function JsonView({ value }) {
  return html`<${Code} text=${typeof value === 'string' ? value : JSON.stringify(value, null, 2)} language="json" />`;
}

// An error from the API: its message, and each located problem (file:line: field).
export function ErrorBox({ error, title }) {
  if (!error) return null;
  const problems = error.problems || [];
  return html`<div class="error" role="alert">
    ${title ? html`<strong>${title}: </strong>` : null}${error.message}
    ${problems.length
      ? html`<ul class="problems">
          ${problems.map(
            (p) => html`<li>
              <code>${p.file || ''}${p.line ? `:${p.line}` : ''}</code>${p.field ? html` <strong>${p.field}</strong>` : null}: ${p.message}
            </li>`,
          )}
        </ul>`
      : null}
  </div>`;
}

export function Notice({ children, kind = 'info' }) {
  return html`<div class=${`notice ${kind}`} role="status">${children}</div>`;
}

export function seconds(value) {
  if (value === null || value === undefined) return '–';
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

export function money(value) {
  if (value === null || value === undefined) return '–';
  return `$${value.toFixed(value < 0.01 ? 5 : 3)}`;
}

export function when(epochSeconds) {
  if (!epochSeconds) return '–';
  return new Date(epochSeconds * 1000).toLocaleString();
}

export function number(value, digits = 3) {
  if (value === null || value === undefined) return '–';
  return Number(value).toFixed(digits).replace(/\.?0+$/, '') || '0';
}

export function go(path) {
  location.hash = `#/${path}`;
}

export function Loading({ what = '' }) {
  return html`<p class="loading" role="status">Loading${what ? ` ${what}` : ''}…</p>`;
}
