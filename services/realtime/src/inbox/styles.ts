/** The inbox's stylesheet (served as `/inbox/<hash>/inbox.css`; the CSP allows no inline style). */
export const inboxCss = `
:root { --bg: #eef1f5; --panel: #fff; --ink: #1b2230; --muted: #667085; --line: #e3e7ee; --accent: #1f6feb;
  --out: #dcf3e4; --in: #fff; --warn: #9a3412; --warnbg: #fff4e5; --read: #1f6feb; --bad: #b42318;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { display: flex; flex-direction: column; min-height: 0; }
button, input, select, textarea { font: inherit; color: inherit; }
button { cursor: pointer; border: 0; border-radius: 8px; padding: .45rem .9rem; background: var(--accent); color: #fff; }
button.secondary { background: #e8eefb; color: #1849a9; }
button.link { background: none; color: var(--accent); padding: .1rem .3rem; }
button.x::before { content: "\\00d7"; font-size: 1.2rem; line-height: 1; }
button:focus-visible, a:focus-visible, input:focus-visible, textarea:focus-visible, select:focus-visible, #thread:focus-visible, summary:focus-visible {
  outline: 3px solid #84adff; outline-offset: 1px; }
.muted { color: var(--muted); } .small { font-size: .82rem; } .center { text-align: center; }
.vh { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.skip { position: absolute; left: -999px; } .skip:focus { left: .5rem; top: .5rem; z-index: 10; background: #fff; padding: .4rem; }
[hidden] { display: none !important; }
.top { display: flex; align-items: center; gap: .75rem; padding: .55rem 1rem; background: #101828; color: #fff; }
.top h1 { font-size: 1rem; margin: 0; font-weight: 600; } .top .spacer { flex: 1; } .top .muted { color: #98a2b3; }
.top select { background: #1d2939; border: 1px solid #344054; border-radius: 6px; padding: .2rem .4rem; }
#conn:empty { display: none; }
#conn { font-size: .8rem; padding: .1rem .5rem; border-radius: 1rem; background: #344054; }
#conn[data-state=open] { background: #067647; } #conn[data-state=closed] { background: #b54708; }
.notice-bar { display: flex; align-items: start; }
#notice { flex: 1; margin: 0; padding: .55rem 1rem; background: var(--warnbg); color: var(--warn); border-bottom: 1px solid #fed7aa; }
#notice-dismiss { background: var(--warnbg); border-radius: 0; align-self: stretch; }
#signin-view { flex: 1; display: grid; place-items: start center; padding: 3rem 1rem; }
.card { background: var(--panel); border-radius: 12px; padding: 1.25rem; width: min(560px, 100%); box-shadow: 0 1px 3px #0002; display: grid; gap: .6rem; }
.card h2 { margin: 0; } .card textarea { width: 100%; font-family: ui-monospace, monospace; font-size: .8rem; }
#app { flex: 1; display: grid; grid-template-columns: minmax(280px, 360px) 1fr; min-height: 0; }
#side { display: flex; flex-direction: column; min-height: 0; border-right: 1px solid var(--line); background: var(--panel); }
.panel { padding: .6rem .75rem; border-bottom: 1px solid var(--line); }
.panel.grow { flex: 1; overflow: auto; min-height: 0; }
.panel h2 { font-size: .78rem; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: .2rem 0 .5rem; }
.list { list-style: none; margin: 0; padding: 0; }
#sessions { max-height: 40vh; overflow: auto; }
.session { display: grid; gap: .15rem; padding: .5rem; border-radius: 10px; border: 1px solid transparent; }
.session.selected { border-color: #b2ccff; background: #f5f8ff; }
.session .pick { background: none; color: inherit; padding: 0; text-align: left; font-weight: 600; }
.session .status::before { content: ""; display: inline-block; width: .55rem; height: .55rem; border-radius: 50%; margin-right: .35rem; background: #98a2b3; }
.session .status[data-state=connected]::before { background: #17b26a; }
.session .status[data-state=qr]::before, .session .status[data-state=connecting]::before { background: #f79009; }
.session .status[data-state=failed]::before, .session .status[data-state=logged_out]::before, .session .status[data-state=disconnected]::before { background: #f04438; }
.session .qr { width: 200px; height: 200px; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 6px; }
.session [data-action=sync] { justify-self: start; margin-top: .25rem; font-size: .85rem; padding: .3rem .7rem; }
#search { width: 100%; padding: .45rem .7rem; border: 1px solid var(--line); border-radius: 8px; background: #f9fafb; margin-bottom: .5rem; }
.chat .pick { display: grid; grid-template-columns: 2.5rem 1fr; grid-template-rows: auto auto; column-gap: .6rem; width: 100%;
  text-align: left; background: none; color: inherit; padding: .5rem; border-radius: 10px; }
.chat .pick:hover { background: #f2f4f7; } .chat.selected .pick { background: #eef4ff; }
.avatar { grid-row: span 2; width: 2.5rem; height: 2.5rem; border-radius: 50%; background: #d1e0ff; color: #1849a9; display: grid; place-items: center; font-weight: 600; font-size: .85rem; }
.line { display: flex; align-items: center; gap: .4rem; min-width: 0; }
.name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; flex: 1; }
.tag { font-size: .7rem; background: #f2f4f7; color: var(--muted); padding: 0 .35rem; border-radius: 4px; }
.when { font-size: .75rem; color: var(--muted); }
.preview { flex: 1; min-width: 0; color: var(--muted); font-size: .85rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.dir::before { content: "\\2199"; margin-right: .2rem; } .preview .tick { min-width: 0; margin-right: .25rem; } .dir.out::before { content: "\\2197"; color: var(--accent); }
.badge { background: #17b26a; color: #fff; border-radius: 1rem; min-width: 1.35rem; padding: 0 .4rem; font-size: .75rem; text-align: center; font-weight: 600; }
#archived summary { cursor: pointer; color: var(--muted); font-size: .85rem; padding: .4rem .5rem; }
#search-results h3 { margin: .2rem 0; color: var(--muted); font-weight: 500; }
#chat { display: flex; flex-direction: column; min-height: 0; position: relative; background: #e9edf2; }
.chat-head { display: flex; align-items: center; gap: .6rem; padding: .55rem 1rem; background: var(--panel); border-bottom: 1px solid var(--line); min-height: 3.3rem; }
.chat-head h2 { font-size: 1rem; margin: 0; } .chat-head p { margin: 0; }
#back { display: none; }
#chat.empty .chat-head { visibility: hidden; }
#thread { flex: 1; overflow-y: auto; padding: 1rem 1.25rem; overflow-anchor: none; }
.thread-top { text-align: center; color: var(--muted); font-size: .8rem; margin: .2rem 0; min-height: 1em; }
.day { text-align: center; margin: .6rem 0 .3rem; } .day span { background: #fff; color: var(--muted); font-size: .75rem; padding: .15rem .6rem; border-radius: 1rem; box-shadow: 0 1px 1px #0001; }
.bubble { width: fit-content; max-width: min(72%, 560px); margin: 0 0 .3rem; background: var(--in); border-radius: 10px; padding: .4rem .6rem .3rem;
  box-shadow: 0 1px 1px #0001; overflow-wrap: anywhere; contain: layout style; }
.bubble.out { margin-left: auto; background: var(--out); }
.bubble[data-status=failed] { background: #fef3f2; border: 1px solid #fecdca; }
.bubble[data-status=unknown] { background: #fffaeb; border: 1px solid #fedf89; }
.bubble[data-status=pending] { opacity: .8; }
.bubble .sender { margin: 0 0 .15rem; font-size: .8rem; font-weight: 600; color: #6941c6; }
.bubble .text { margin: 0; white-space: pre-wrap; }
.bubble blockquote { margin: 0 0 .3rem; padding: .25rem .5rem; border-left: 3px solid #6941c6; background: #0000000a; border-radius: 4px; font-size: .85rem; color: var(--muted); }
.bubble .media { display: block; max-width: 100%; max-height: 320px; border-radius: 6px; margin-bottom: .25rem; }
.bubble audio { display: block; width: 260px; max-width: 100%; }
.bubble .document { display: inline-block; padding: .35rem .5rem; background: #0000000a; border-radius: 6px; margin-bottom: .25rem; }
.bubble .media-note { margin: 0 0 .2rem; font-size: .85rem; color: var(--muted); font-style: italic; }
.bubble .reactions { margin: .15rem 0 0; font-size: .95rem; }
.bubble .reason { margin: .2rem 0 0; font-size: .8rem; color: var(--bad); }
.bubble[data-status=unknown] .reason { color: var(--warn); }
.bubble .meta { margin: .1rem 0 0; display: flex; justify-content: flex-end; align-items: center; gap: .35rem; font-size: .72rem; color: var(--muted); }
.bubble .agent { font-style: italic; }
.tick { display: inline-block; min-width: 1.1em; font-size: .8rem; }
.tick[data-tick=pending]::before { content: "\\25F7"; }
.tick[data-tick=sent]::before { content: "\\2713"; }
.tick[data-tick=delivered]::before { content: "\\2713\\2713"; }
.tick[data-tick=read]::before, .tick[data-tick=played]::before { content: "\\2713\\2713"; color: var(--read); }
.tick[data-tick=failed]::before { content: "\\26A0"; color: var(--bad); }
.tick[data-tick=unknown]::before { content: "?"; color: var(--warn); font-weight: 700; }
.bubble { position: relative; }
.bubble .actions { position: absolute; top: -.7rem; right: .4rem; display: flex; gap: .1rem; background: #fff; border-radius: 6px;
  box-shadow: 0 1px 3px #0003; opacity: 0; transition: opacity .1s; }
.bubble[data-status=failed] .actions { position: static; box-shadow: none; background: none; justify-content: flex-end; }
.bubble:hover .actions, .bubble:focus-within .actions, .bubble[data-status=failed] .actions { opacity: 1; }
.bubble .actions button { font-size: .78rem; }
#new-messages { position: absolute; right: 1.5rem; bottom: 7.5rem; border-radius: 1rem; box-shadow: 0 2px 6px #0003; }
#reply { background: var(--panel); border-top: 1px solid var(--line); padding: .6rem .9rem; display: grid; gap: .35rem; }
#reply p { margin: 0; }
.warn { background: var(--warnbg); color: var(--warn); padding: .35rem .6rem; border-radius: 6px; font-size: .85rem; }
.reply-quote-row, .reply-file-row { display: flex; align-items: center; gap: .3rem; }
#reply-quote { flex: 1; border-left: 3px solid #6941c6; padding: .2rem .5rem; background: #f4f3ff; border-radius: 4px; font-size: .85rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.reply-row { display: flex; gap: .5rem; align-items: end; }
#reply-text { flex: 1; resize: vertical; min-height: 2.6rem; max-height: 12rem; padding: .5rem .7rem; border: 1px solid var(--line); border-radius: 10px; }
#template { padding: .4rem; border-radius: 8px; border: 1px solid var(--line); }
.attach { display: grid; place-items: center; width: 2.5rem; height: 2.5rem; border-radius: 50%; background: #f2f4f7; cursor: pointer; position: relative; }
.attach:focus-within { outline: 3px solid #84adff; }
.attach input { position: absolute; inset: 0; opacity: 0; cursor: pointer; width: 100%; }
.attach .plus::before { content: "+"; font-size: 1.4rem; color: var(--muted); }
@media (max-width: 800px) {
  #app { grid-template-columns: 1fr; }
  #chat { display: none; } body.chat-open #chat { display: flex; } body.chat-open #side { display: none; }
  #back { display: inline-block; } .top { gap: .4rem; padding: .45rem .6rem; } .top h1 { font-size: .85rem; }
  #whoami, .top label { display: none; } #signout { padding: .3rem .5rem; font-size: .8rem; }
  .bubble { max-width: 88%; }
}
`;
