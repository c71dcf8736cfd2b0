import { catalogue, type CatalogueKey } from './catalogue.js';

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (text: string) => text.replace(/[&<>"']/g, (c) => escapes[c]!);

/**
 * The inbox's HTML (no inline script or style: the CSP forbids them). Its static text is the Spanish
 * catalogue's, filled in here so the page reads right before its script runs; the script translates the
 * same `data-i18n*` attributes when the language changes. `base` is where the content-hashed assets are.
 */
export function inboxHtml(base: string): string {
  const es = catalogue.es;
  const text = (key: CatalogueKey) => `data-i18n="${key}">${escape(es[key])}`;
  const label = (key: CatalogueKey) =>
    `data-i18n-label="${key}" aria-label="${escape(es[key])}" title="${escape(es[key])}"`;
  return `<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${escape(es['app.title'])}</title>
<link rel="stylesheet" href="${base}inbox.css">
<script type="module" src="${base}page/main.js"></script>
</head>
<body>
<a class="skip" href="#thread" ${text('app.skip')}</a>
<header class="top">
  <h1 ${text('app.title')}</h1>
  <span id="conn" role="status"></span>
  <span class="spacer"></span>
  <span id="whoami" class="muted"></span>
  <label for="lang" class="small" ${text('lang.label')}</label>
  <select id="lang"><option value="es" ${text('lang.es')}</option><option value="en" ${text('lang.en')}</option></select>
  <button type="button" id="signout" class="secondary" hidden ${text('signin.out')}</button>
</header>
<div class="notice-bar"><p id="notice" role="alert" hidden></p><button type="button" id="notice-dismiss" class="link x" hidden ${label('notice.dismiss')}></button></div>
<main id="signin-view" hidden>
  <form id="signin" class="card">
    <h2 ${text('signin.title')}</h2>
    <p class="muted" ${text('signin.help')}</p>
    <label for="signin-token" ${text('signin.label')}</label>
    <textarea id="signin-token" rows="5" autocomplete="off" spellcheck="false" required></textarea>
    <button type="submit" ${text('signin.submit')}</button>
  </form>
</main>
<div id="app" hidden>
  <aside id="side">
    <section class="panel" aria-labelledby="sessions-title">
      <h2 id="sessions-title" ${text('sessions.title')}</h2>
      <ul id="sessions" class="list"></ul>
    </section>
    <section class="panel grow" aria-labelledby="conversations-title">
      <h2 id="conversations-title" ${text('conversations.title')}</h2>
      <label for="search" class="vh" ${text('search.label')}</label>
      <input id="search" type="search" autocomplete="off" data-i18n-placeholder="search.placeholder" placeholder="${escape(es['search.placeholder'])}">
      <div id="search-results" hidden></div>
      <div id="conversation-lists">
        <ul id="conversations" class="list"></ul>
        <details id="archived" hidden><summary id="archived-summary"></summary><ul id="archived-list" class="list"></ul></details>
      </div>
    </section>
  </aside>
  <section id="chat" class="empty" aria-labelledby="chat-title">
    <header class="chat-head">
      <button type="button" id="back" class="secondary" ${text('thread.back')}</button>
      <div><h2 id="chat-title"></h2><p id="chat-sub" class="muted small"></p></div>
    </header>
    <div id="thread" tabindex="0" ${label('thread.label')}></div>
    <button type="button" id="new-messages" hidden ${text('thread.newMessages')}</button>
    <form id="reply" hidden>
      <p id="reply-rights" class="warn" hidden></p>
      <div class="reply-quote-row"><p id="reply-quote" hidden></p><button type="button" id="reply-quote-clear" class="link x" hidden ${label('reply.cancelQuote')}></button></div>
      <p id="window-closed" class="warn" hidden></p>
      <label for="template" id="template-label" hidden ${text('reply.template')}</label>
      <select id="template" hidden></select>
      <label for="reply-text" class="vh" ${text('reply.label')}</label>
      <div class="reply-row">
        <label id="reply-attach" class="attach" ${label('reply.attach')}><input id="reply-file" type="file"><span class="plus" aria-hidden="true"></span></label>
        <textarea id="reply-text" rows="2" data-i18n-placeholder="reply.placeholder" placeholder="${escape(es['reply.placeholder'])}"></textarea>
        <button type="submit" ${text('reply.send')}</button>
      </div>
      <div class="reply-file-row"><span id="reply-file-name" class="small"></span><button type="button" id="reply-file-clear" class="link x" hidden ${label('reply.removeFile')}></button></div>
    </form>
  </section>
</div>
<div id="announcer" class="vh" aria-live="polite"></div>
</body>
</html>
`;
}
