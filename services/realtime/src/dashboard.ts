/**
 * The live dashboard served at `GET /`: one small page on the realtime client (`/client.js`), no
 * framework. The token comes from the URL (`#token=...`), from this browser's storage, or from the
 * form the page shows when it has none.
 */
export const dashboardHtml = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Puente · live</title>
<style>
  :root { font: 14px/1.4 system-ui, sans-serif; color: #1d2433; background: #f5f6f8; }
  body { margin: 0; }
  header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #1d2433; color: #fff; }
  header h1 { font-size: 1rem; margin: 0; }
  #state { font-size: .85rem; opacity: .85; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; padding: 1rem; }
  section { background: #fff; border-radius: 6px; padding: .6rem .8rem; box-shadow: 0 1px 2px #0001; min-width: 0; }
  h2 { font-size: .95rem; margin: .2rem 0 .5rem; }
  table { width: 100%; border-collapse: collapse; font-size: .85rem; }
  td, th { text-align: left; padding: .25rem .3rem; border-bottom: 1px solid #eef0f3; vertical-align: top; overflow-wrap: anywhere; }
  tr.pick { cursor: pointer; } tr.pick:hover, tr.on { background: #eef4ff; }
  .badge { display: inline-block; min-width: 1.4em; padding: 0 .4em; border-radius: 1em; background: #2f6fed; color: #fff; text-align: center; font-size: .75rem; }
  .muted { color: #7a8294; } .out { color: #2f6fed; } .in { color: #1d2433; }
  form.inline { display: flex; gap: .4rem; margin-bottom: .5rem; } input { flex: 1; padding: .3rem; }
  #login { max-width: 560px; margin: 3rem auto; background: #fff; padding: 1rem; border-radius: 6px; }
  #login textarea { width: 100%; height: 6rem; }
  .hidden { display: none; }
  img.qr { max-width: 160px; }
</style>
</head>
<body>
<header><h1>Puente · live</h1><span id="state">connecting…</span></header>
<div id="login" class="hidden">
  <h2>Read token</h2>
  <p class="muted">Paste a token from <code>npx puente token --channels '&gt;'</code>. It is kept in this browser only.</p>
  <form id="login-form"><textarea id="token" required></textarea><p><button>Open</button></p></form>
</div>
<main id="app" class="hidden">
  <section><h2>WhatsApp sessions</h2><table><thead><tr><th>session</th><th>status</th><th>QR / last sync</th></tr></thead><tbody id="sessions"></tbody></table></section>
  <section><h2>Conversations <span id="conv-title" class="muted"></span></h2><table><tbody id="conversations"><tr><td class="muted">pick a session</td></tr></tbody></table></section>
  <section><h2>Messages <span id="msg-title" class="muted"></span></h2><table><tbody id="messages"><tr><td class="muted">pick a conversation</td></tr></tbody></table></section>
  <section><h2>Kissflow records</h2>
    <form class="inline" id="kf-form"><input id="kf-dataset" placeholder="dataset id, e.g. DS_Documentos_Cliente"><button>Show</button></form>
    <table><tbody id="records"></tbody></table></section>
  <section><h2>Bitrix24 links</h2><table><thead><tr><th>link</th><th>status</th><th>Bitrix24 id</th><th>last error</th></tr></thead><tbody id="links"></tbody></table></section>
</main>
<script type="module">
import { RealtimeClient, channels } from '/client.js';

const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const time = (v) => (v ? new Date(v).toLocaleString() : '');

const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) { localStorage.setItem('puente.token', fromHash); history.replaceState(null, '', location.pathname); }
const token = localStorage.getItem('puente.token');
if (!token) {
  $('login').classList.remove('hidden');
  $('state').textContent = 'no token';
  $('login-form').onsubmit = (e) => { e.preventDefault(); localStorage.setItem('puente.token', $('token').value.trim()); location.reload(); };
} else {
  $('app').classList.remove('hidden');
  start(token);
}

function start(token) {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  const client = new RealtimeClient({ url, token, onState: (state, detail) => {
    $('state').textContent = state + (detail ? ' · ' + detail : '');
    if (detail && /unauthorized|expired/.test(detail)) { localStorage.removeItem('puente.token'); }
  } });

  /** A live collection: documents by id, re-rendered (batched per frame) on every change. */
  function live(channel, render) {
    const docs = new Map();
    let queued = false;
    const paint = () => { queued = false; render([...docs.values()]); };
    const sub = client.subscribe(channel, (event) => {
      if (event.kind === 'snapshot') { if (event.reset) docs.clear(); for (const d of event.items) docs.set(d._id, d); }
      else if (event.kind === 'update') docs.set(event.doc._id, event.doc);
      else if (event.kind === 'remove') docs.delete(event.key);
      else if (event.kind === 'error') $('state').textContent = channel + ': ' + event.code;
      if (!queued) { queued = true; requestAnimationFrame(paint); }
    });
    return () => sub.unsubscribe();
  }

  let session, chat, stopConversations, stopMessages, stopRecords;
  live(channels.whatsappSessions(), (docs) => {
    $('sessions').innerHTML = docs.sort((a, b) => a._id.localeCompare(b._id)).map((s) => {
      const qr = s.qr ? (String(s.qr).startsWith('data:image') ? '<img class="qr" alt="QR" src="' + esc(s.qr) + '">' : '<code>' + esc(String(s.qr).slice(0, 40)) + '…</code>') : esc(time(s.lastSyncAt));
      return '<tr class="pick' + (s._id === session ? ' on' : '') + '" data-id="' + esc(s._id) + '"><td>' + esc(s._id) + '</td><td>' + esc(s.status) + '</td><td>' + qr + '</td></tr>';
    }).join('') || '<tr><td class="muted">no sessions yet</td></tr>';
  });
  $('sessions').onclick = (e) => {
    const row = e.target.closest('tr[data-id]');
    if (!row) return;
    session = row.dataset.id; chat = undefined;
    $('conv-title').textContent = session;
    stopConversations?.(); stopMessages?.();
    $('messages').innerHTML = '<tr><td class="muted">pick a conversation</td></tr>';
    stopConversations = live(channels.whatsappConversations(session), (docs) => {
      $('conversations').innerHTML = docs.sort((a, b) => String(b.updatedAt ?? '').localeCompare(String(a.updatedAt ?? ''))).map((c) =>
        '<tr class="pick' + (c.chatId === chat ? ' on' : '') + '" data-chat="' + esc(c.chatId) + '"><td>' + esc(c.name ?? c.phone ?? c.chatId) + '<div class="muted">' + esc(c.lastMessage?.text ?? c.lastMessage?.type ?? '') + '</div></td><td>' +
        (c.unreadCount ? '<span class="badge">' + esc(c.unreadCount) + '</span>' : '') + '</td><td class="muted">' + esc(time(c.updatedAt)) + '</td></tr>').join('') || '<tr><td class="muted">no conversations</td></tr>';
    });
  };
  $('conversations').onclick = (e) => {
    const row = e.target.closest('tr[data-chat]');
    if (!row) return;
    chat = row.dataset.chat;
    $('msg-title').textContent = chat;
    stopMessages?.();
    stopMessages = live(channels.whatsappMessages(session, chat), (docs) => {
      $('messages').innerHTML = docs.sort((a, b) => String(a.timestamp ?? '').localeCompare(String(b.timestamp ?? ''))).map((m) =>
        '<tr class="' + (m.direction === 'out' ? 'out' : 'in') + '" data-message="' + esc(m.messageId ?? m._id) + '"><td>' + esc(m.text ?? m.media?.caption ?? '[' + (m.type ?? 'message') + ']') + '</td><td class="muted">' + esc(m.direction === 'out' ? m.status ?? '' : '') + '</td><td class="muted">' + esc(time(m.timestamp)) + '</td></tr>').join('') || '<tr><td class="muted">no messages</td></tr>';
    });
  };
  $('kf-form').onsubmit = (e) => {
    e.preventDefault();
    const dataset = $('kf-dataset').value.trim();
    if (!dataset) return;
    stopRecords?.();
    stopRecords = live(channels.kissflow(dataset), (docs) => {
      $('records').innerHTML = docs.map((r) => '<tr><td>' + esc(r.rowId) + '</td><td>' + esc(r.fields?.Name ?? '') + '</td><td class="muted">' + esc(time(r.modifiedAt)) + '</td></tr>').join('') || '<tr><td class="muted">no records</td></tr>';
    });
  };
  live(channels.bitrixLinks(), (docs) => {
    $('links').innerHTML = docs.map((l) => '<tr><td>' + esc(l._id) + '</td><td>' + esc(l.status) + '</td><td>' + esc(l.bitrixId ?? '') + '</td><td class="muted">' + esc(l.lastError ? (l.lastError.code + ': ' + l.lastError.message) : '') + '</td></tr>').join('') || '<tr><td class="muted">no links yet</td></tr>';
  });
  window.puente = { client, select: (s, c) => { session = s; chat = c; } };
}
</script>
</body>
</html>
`;
