// Every call the Studio makes goes through here: the public management API (/api) and
// the OpenAI-compatible API (/v1) of the server that served the page, with JSON bodies
// (or multipart uploads) from this origin. The API key lives in sessionStorage only
// (gone when the tab closes) and travels in the Authorization header, never in a URL.

const KEY_ITEM = 'pilothouse.studio.key';

export function storedKey() {
  return sessionStorage.getItem(KEY_ITEM) || '';
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

function headers(extra = {}) {
  const key = storedKey();
  return key ? { Authorization: `Bearer ${key}`, ...extra } : { ...extra };
}

// An answer that is not 2xx: the server's OpenAI-shaped error, with `problems` for
// located file errors (file, line, field, message).
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `the server answered ${status}`);
    this.status = status;
    this.code = error?.code || null;
    this.param = error?.param || null;
    this.problems = error?.problems || [];
  }
}

// The connection broke (the server went away, the network dropped).
export class ConnectionLost extends Error {
  constructor(detail) {
    super(
      'The connection to the server was lost' +
        (detail ? ` (${detail})` : '') +
        '. Is `pilothouse serve` still running? Nothing you typed was lost.',
    );
    this.code = 'connection_lost';
    this.problems = [];
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new ApiError(response.status, body?.error || { message: `${response.status} ${response.statusText}` });
}

// fetch() from this origin without cookies or caches; a network failure (the server is
// not there) becomes ConnectionLost, an answer that is not 2xx an ApiError.
async function send(path, init) {
  let response;
  try {
    response = await fetch(path, { credentials: 'omit', cache: 'no-store', ...init });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ConnectionLost(error.message);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function api(path, { method = 'GET', json, raw = false, signal } = {}) {
  const response = await send(path, {
    method,
    headers: headers(json === undefined ? {} : { 'Content-Type': 'application/json' }),
    body: json === undefined ? undefined : JSON.stringify(json),
    signal,
  });
  if (response.status === 204) return null;
  return raw ? response.text() : response.json();
}

// A multipart upload with progress: onProgress(sentBytes, totalBytes); then onSent()
// once the bytes are all out (the server is then working: indexing, opening).
export function upload(path, form, { method = 'POST', onProgress, onSent } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.responseType = 'text';
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded, event.total);
    };
    xhr.upload.onload = () => onSent && onSent();
    xhr.onerror = () => reject(new ConnectionLost('the upload did not reach the server'));
    xhr.onload = () => {
      let body = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body?.error || { message: `the server answered ${xhr.status}` }));
    };
    xhr.send(form);
  });
}

// POST /v1/chat/completions with stream: true; calls onChunk(chunk) for each SSE data
// object. Resolves when `data: [DONE]` arrives; rejects with ApiError for an error
// answer or an error event, and with ConnectionLost when the stream ends without
// [DONE] (the server went away mid-answer).
export async function streamChat(body, onChunk, signal) {
  const response = await send('/v1/chat/completions', {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    let part;
    try {
      part = await reader.read();
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new ConnectionLost('the answer stopped mid-stream');
    }
    if (part.done) break;
    buffer += decoder.decode(part.value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      if (data === '[DONE]') return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(200, chunk.error);
      onChunk(chunk);
    }
  }
  throw new ConnectionLost('the answer ended before it was complete');
}

// Scopes as the server reads them: admin implies every scope, chat:* every chat:<name>,
// approve:* every approve:<name>, promote:* every promote:<name>.
export function allows(me, scope) {
  if (!me) return false;
  const held = new Set(me.scopes);
  if (held.has('admin') || held.has(scope)) return true;
  if (scope.startsWith('chat:')) return held.has('chat:*');
  if (scope.startsWith('approve:')) return held.has('approve:*');
  if (scope.startsWith('promote:')) return held.has('promote:*');
  return false;
}

// Whether the key may promote some copilot (promote:<name>, promote:*, or admin).
export function promotesAny(me) {
  return !!me && me.scopes.some((s) => s === 'admin' || s.startsWith('promote:'));
}
