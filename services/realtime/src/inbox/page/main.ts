import { channels, encodeToken, RealtimeClient, type ChannelEvent, type Doc } from '@puente/realtime-client';
import { languages, type CatalogueKey, type Language } from '../catalogue.js';
import { ApiError, call, maySend, paths, TOKEN_KEY, tokenInfo, whenUnauthorized, type TokenInfo } from './api.js';
import {
  byId,
  el,
  fullTime,
  language,
  num,
  obj,
  reconcile,
  setLanguage,
  shortTime,
  str,
  t,
  translateStatic,
} from './dom.js';
import { qrPng } from './qr.js';
import { statusLabel, Thread, typeLabel, type Message, type Outgoing } from './thread.js';

/** The Cloud API customer-service window: free text only within 24 h of the customer's last message. */
const WINDOW_MS = 24 * 60 * 60 * 1000;
const SESSION_KEY = 'puente.inbox.session';

interface Conversation {
  chatId: string;
  name: string;
  isGroup: boolean;
  unread: number;
  archived: boolean;
  sortKey: string;
  lastInboundAt: string | undefined;
  last:
    | { text: string; fromMe: boolean; status: string | undefined; timestamp: string | undefined; type: string }
    | undefined;
}

interface Template {
  name: string;
  language: string;
}

// ---------------------------------------------------------------------------------------------------
// Notices, the sign-in form, the language.

const notice = byId('notice');
let noticeTimer: ReturnType<typeof setTimeout> | undefined;
/** The notice shown, as a function of the language, so a language switch rewrites it. */
let noticeText: (() => string) | undefined;
function showNotice(text: string | (() => string), sticky = false): void {
  noticeText = typeof text === 'string' ? () => text : text;
  notice.textContent = noticeText();
  notice.hidden = false;
  byId('notice-dismiss').hidden = false;
  clearTimeout(noticeTimer);
  if (!sticky) noticeTimer = setTimeout(clearNotice, 15_000);
}
function clearNotice(): void {
  noticeText = undefined;
  notice.textContent = '';
  notice.hidden = true;
  byId('notice-dismiss').hidden = true;
}
byId('notice-dismiss').addEventListener('click', clearNotice);

/** Why a token was refused, from the server's words, as the catalogue says it. */
function refusalText(reason: string): () => string {
  if (/expired/i.test(reason)) return () => t('signin.expired');
  if (/revoked/i.test(reason)) return () => t('signin.revoked');
  return () => t('signin.refused');
}

let app: App | undefined;

function signIn(message?: string | (() => string)): void {
  app?.stop();
  app = undefined;
  sessionStorage.removeItem(TOKEN_KEY);
  byId('app').hidden = true;
  byId('signout').hidden = true;
  byId('whoami').textContent = '';
  byId('conn').textContent = '';
  byId('signin-view').hidden = false;
  if (message) showNotice(message, true);
  byId<HTMLTextAreaElement>('signin-token').focus();
}

byId<HTMLFormElement>('signin').addEventListener('submit', (event) => {
  event.preventDefault();
  const field = byId<HTMLTextAreaElement>('signin-token');
  const token = field.value.trim();
  const info = tokenInfo(token);
  if (!info) {
    showNotice(() => t('signin.malformed'), true);
    field.focus();
    return;
  }
  if (info.exp * 1000 <= Date.now()) {
    showNotice(() => t('signin.expired'), true);
    return;
  }
  field.value = '';
  clearNotice();
  start(info);
});
byId('signout').addEventListener('click', () => signIn());

const langSelect = byId<HTMLSelectElement>('lang');
langSelect.addEventListener('change', () => {
  const next = langSelect.value as Language;
  if (!(languages as readonly string[]).includes(next)) return;
  setLanguage(next);
  translateStatic();
  if (noticeText) notice.textContent = noticeText();
  byId('announcer').textContent = '';
  app?.relabel();
});

whenUnauthorized((reason) => signIn(refusalText(reason)));

// ---------------------------------------------------------------------------------------------------
// The signed-in inbox.

class App {
  private readonly client: RealtimeClient;
  private readonly sessions = new Map<string, Doc>();
  private readonly sessionNodes = new Map<string, { signature: string; node: HTMLElement }>();
  private readonly qrImages = new Map<string, { qr: string; png: string }>();
  private readonly conversations = new Map<string, Conversation>();
  private readonly conversationNodes = new Map<string, { signature: string; node: HTMLElement }>();
  private readonly templates = new Map<string, Template>();
  private session: string | undefined;
  private chat: { chatId: string; name: string; isGroup: boolean } | undefined;
  private thread: Thread | undefined;
  private conversationsSub: { unsubscribe(): void } | undefined;
  private templatesSub: { unsubscribe(): void } | undefined;
  private conversationsLoaded = false;
  private quote: Message | undefined;
  private queued = false;
  private searchAbort: AbortController | undefined;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  private expiry: ReturnType<typeof setTimeout> | undefined;
  private readonly cleanups: (() => void)[] = [];

  constructor(private readonly info: TokenInfo) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.client = new RealtimeClient({
      url: `${scheme}//${location.host}/ws`,
      token: () => this.info.token,
      onState: (state, detail) => this.onState(state, detail),
    });
    this.client.subscribe(channels.whatsappSessions(), (event) => this.onSessions(event));
    // The server closes the socket when the token expires; the page says so at the same moment.
    const left = info.exp * 1000 - Date.now();
    if (left < 2 ** 31) this.expiry = setTimeout(() => signIn(() => t('signin.expired')), Math.max(0, left));
    this.wire();
  }

  stop(): void {
    clearTimeout(this.expiry);
    this.thread?.close();
    this.client.close();
    for (const cleanup of this.cleanups) cleanup();
  }

  relabel(): void {
    this.sessionNodes.clear();
    this.conversationNodes.clear();
    this.thread?.refresh();
    this.onConnState();
    this.schedule();
    this.renderReply();
    if (byId<HTMLInputElement>('search').value.trim()) this.searchSoon(0);
  }

  private connState: CatalogueKey = 'conn.connecting';
  private onState(state: string, detail?: string): void {
    if (detail && /^unauthorized|closed 4001/.test(detail)) {
      signIn(refusalText(detail));
      return;
    }
    this.connState = state === 'open' ? 'conn.open' : state === 'connecting' ? 'conn.connecting' : 'conn.closed';
    this.onConnState();
  }

  private onConnState(): void {
    const conn = byId('conn');
    conn.textContent = t(this.connState);
    conn.dataset.state = this.connState.slice(5);
  }

  // ------------------------------------------------------------------------------ wiring (once)

  private listen<K extends keyof HTMLElementEventMap>(
    target: HTMLElement,
    type: K,
    handler: (event: HTMLElementEventMap[K]) => void,
  ): void {
    target.addEventListener(type, handler);
    this.cleanups.push(() => target.removeEventListener(type, handler));
  }

  private wire(): void {
    this.listen(byId('sessions'), 'click', (event) => {
      const item = (event.target as Element).closest<HTMLElement>('[data-session]');
      if (!item) return;
      const session = item.dataset.session!;
      if ((event.target as Element).closest('[data-action=sync]')) void this.sync(session);
      else this.selectSession(session);
    });
    const openFrom = (event: MouseEvent) => {
      const item = (event.target as Element).closest<HTMLElement>('[data-chat]');
      if (!item || !this.session) return;
      this.openChat(item.dataset.chat!, item.dataset.name);
    };
    this.listen(byId('conversations'), 'click', openFrom);
    this.listen(byId('archived'), 'click', openFrom);
    this.listen(byId('search-results'), 'click', openFrom);
    this.listen(byId<HTMLInputElement>('search'), 'input', () => this.searchSoon(300));
    this.listen(byId<HTMLInputElement>('search'), 'keydown', (event) => {
      if (event.key === 'Escape') {
        byId<HTMLInputElement>('search').value = '';
        this.searchSoon(0);
      }
    });
    this.listen(byId('new-messages'), 'click', () => this.thread?.toBottom());
    this.listen(byId('back'), 'click', () => document.body.classList.remove('chat-open'));
    this.listen(byId<HTMLFormElement>('reply'), 'submit', (event) => {
      event.preventDefault();
      void this.submit();
    });
    this.listen(byId<HTMLTextAreaElement>('reply-text'), 'keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        byId<HTMLFormElement>('reply').requestSubmit();
      }
    });
    this.listen(byId<HTMLInputElement>('reply-file'), 'change', () => this.renderReply());
    this.listen(byId('reply-file-clear'), 'click', () => {
      byId<HTMLInputElement>('reply-file').value = '';
      this.renderReply();
    });
    this.listen(byId('reply-quote-clear'), 'click', () => {
      this.quote = undefined;
      this.renderReply();
    });
  }

  // ------------------------------------------------------------------------------ sessions

  private onSessions(event: ChannelEvent): void {
    if (event.kind === 'snapshot') {
      if (event.reset) this.sessions.clear();
      for (const doc of event.items) this.sessions.set(doc._id, doc);
    } else if (event.kind === 'update') this.sessions.set(event.doc._id, event.doc);
    else if (event.kind === 'remove') this.sessions.delete(event.key);
    else showNotice(() => t('notice.failed', { detail: event.message }));
    if (!this.session && this.sessions.size > 0) {
      const remembered = sessionStorage.getItem(SESSION_KEY);
      const first = [...this.sessions.keys()].sort()[0]!;
      this.selectSession(remembered && this.sessions.has(remembered) ? remembered : first);
    }
    this.schedule();
  }

  private selectSession(session: string): void {
    if (session === this.session) return;
    this.session = session;
    sessionStorage.setItem(SESSION_KEY, session);
    this.closeChat();
    this.conversationsSub?.unsubscribe();
    this.templatesSub?.unsubscribe();
    this.conversations.clear();
    this.conversationNodes.clear();
    this.templates.clear();
    this.conversationsLoaded = false;
    byId<HTMLInputElement>('search').value = '';
    this.searchSoon(0);
    this.conversationsSub = this.client.subscribe(channels.whatsappConversations(session), (event) =>
      this.onConversations(event),
    );
    if (this.isCloudApi(session))
      this.templatesSub = this.client.subscribe(`whatsapp.templates.${encodeToken(session)}`, (event) =>
        this.onTemplates(event),
      );
    this.sessionNodes.clear();
    this.schedule();
  }

  private isCloudApi(session: string): boolean {
    return this.sessions.get(session)?.provider === 'cloud-api';
  }

  private async sync(session: string): Promise<void> {
    try {
      await call(this.info.token, 'POST', paths.sync(session), { idempotencyKey: crypto.randomUUID() });
      showNotice(() => t('session.syncAsked'));
    } catch (error) {
      this.commandFailed(error);
    }
  }

  private commandFailed(error: unknown): void {
    if (error instanceof ApiError) {
      if (error.status === 401) return;
      const key = error.status === 403 ? 'notice.forbidden' : 'notice.failed';
      showNotice(() => t(key, { detail: error.message }), true);
    } else showNotice(() => t('notice.network'), true);
  }

  private sessionStatus(doc: Doc): { key: CatalogueKey; state: string } {
    if (str(doc.qr)) return { key: 'session.status.qr', state: 'qr' };
    const status = str(doc.status);
    switch (status) {
      case 'connected':
      case 'connecting':
      case 'disconnected':
      case 'logged_out':
      case 'failed':
        return { key: `session.status.${status}`, state: status };
      default:
        return { key: 'session.status.unknown', state: 'unknown' };
    }
  }

  private renderSessions(): void {
    const list = byId('sessions');
    const docs = [...this.sessions.values()].sort((a, b) => a._id.localeCompare(b._id));
    if (docs.length === 0) {
      list.replaceChildren(el('li', { class: 'muted' }, t('sessions.empty')));
      return;
    }
    const nodes = docs.map((doc) => {
      const selected = doc._id === this.session;
      const conversations = selected && this.conversationsLoaded ? this.conversations.size : undefined;
      const signature = JSON.stringify([doc, selected, conversations]);
      const held = this.sessionNodes.get(doc._id);
      if (held?.signature === signature) return held.node;
      const node = this.sessionItem(doc, selected, conversations);
      this.sessionNodes.set(doc._id, { signature, node });
      return node;
    });
    reconcile(list, nodes);
  }

  private sessionItem(doc: Doc, selected: boolean, conversations: number | undefined): HTMLElement {
    const id = doc._id;
    const { key, state } = this.sessionStatus(doc);
    const sync = obj(doc.sync);
    const counts = obj(sync?.counts);
    const counters = obj(doc.counters);
    const lastSync = str(doc.lastSyncAt);
    const syncing = str(sync?.phase) === 'started' || str(sync?.phase) === 'progress';
    // Contacts: what the last full sync counted (the page does not load every contact); conversations:
    // the selected session's list as loaded, else the last sync's count; sent: the session's counter.
    const totals = t('session.totals', {
      contacts: num(counts?.contacts) ?? '–',
      conversations: conversations ?? num(counts?.chats) ?? '–',
      sent: num(counters?.messagesOut) ?? 0,
    });
    const node = el(
      'li',
      { 'data-session': id, class: selected ? 'session selected' : 'session' },
      el(
        'button',
        { type: 'button', class: 'pick', 'aria-pressed': String(selected) },
        el('span', { class: 'session-name' }, id),
        str(doc.phone) ? el('span', { class: 'muted' }, ` ${str(doc.phone)}`) : undefined,
      ),
      el('span', { class: 'status', 'data-role': 'status', 'data-state': state }, t(key)),
      el(
        'span',
        { class: 'muted small', 'data-role': 'last-sync', title: fullTime(lastSync) },
        syncing
          ? t('session.syncing')
          : lastSync
            ? t('session.lastSync', { time: fullTime(lastSync) })
            : t('session.neverSynced'),
      ),
      el('span', { class: 'muted small', 'data-role': 'totals' }, totals),
    );
    const qr = str(doc.qr);
    if (qr) {
      let image = this.qrImages.get(id);
      if (image?.qr !== qr) {
        image = { qr, png: qrPng(qr) };
        this.qrImages.set(id, image);
      }
      node.append(
        el('img', { 'data-role': 'qr', class: 'qr', src: image.png, alt: t('session.qrAlt', { session: id }) }),
        el('span', { class: 'muted small' }, t('session.qrHelp')),
      );
    }
    node.append(el('button', { type: 'button', 'data-action': 'sync', class: 'secondary' }, t('session.sync')));
    return node;
  }

  // ------------------------------------------------------------------------------ conversations

  private onConversations(event: ChannelEvent): void {
    if (event.kind === 'snapshot') {
      if (event.reset) this.conversations.clear();
      for (const doc of event.items) this.putConversation(doc);
      if (event.complete) this.conversationsLoaded = true;
    } else if (event.kind === 'update') this.putConversation(event.doc);
    else if (event.kind === 'remove') {
      for (const [chatId, conversation] of this.conversations)
        if (`${this.session}:${chatId}` === event.key || conversation.chatId === event.key)
          this.conversations.delete(chatId);
    } else {
      showNotice(() => t('notice.failed', { detail: event.message }));
      this.conversationsLoaded = true;
    }
    this.schedule();
    this.renderReply();
  }

  private putConversation(doc: Doc): void {
    const chatId = str(doc.chatId);
    if (!chatId) return;
    if (doc._deleted === true) {
      this.conversations.delete(chatId);
      return;
    }
    const last = obj(doc.lastMessage);
    const lastTime = str(last?.timestamp);
    this.conversations.set(chatId, {
      chatId,
      name: str(doc.name) ?? str(doc.phone) ?? chatId.split('@')[0]!,
      isGroup: doc.kind === 'group' || chatId.endsWith('@g.us'),
      unread: num(doc.unreadCount) ?? 0,
      archived: doc.archived === true,
      sortKey: lastTime ?? str(doc.updatedAt) ?? '',
      lastInboundAt: str(doc.lastInboundAt),
      last: last
        ? {
            text: str(last.text) ?? '',
            fromMe: last.fromMe === true,
            status: str(last.status),
            timestamp: lastTime,
            type: str(last.type) ?? 'text',
          }
        : undefined,
    });
    if (this.chat?.chatId === chatId) this.chat.name = this.conversations.get(chatId)!.name;
  }

  private renderConversations(): void {
    const active: HTMLElement[] = [];
    const archived: HTMLElement[] = [];
    const sorted = [...this.conversations.values()].sort((a, b) =>
      a.sortKey === b.sortKey ? a.chatId.localeCompare(b.chatId) : a.sortKey < b.sortKey ? 1 : -1,
    );
    for (const conversation of sorted) {
      const selected = conversation.chatId === this.chat?.chatId;
      const signature = JSON.stringify([conversation, selected]);
      let held = this.conversationNodes.get(conversation.chatId);
      if (held?.signature !== signature) {
        held = { signature, node: this.conversationItem(conversation, selected) };
        this.conversationNodes.set(conversation.chatId, held);
      }
      (conversation.archived ? archived : active).push(held.node);
    }
    const list = byId('conversations');
    if (!this.session) reconcile(list, [el('li', { class: 'muted' }, t('conversations.pick'))]);
    else if (active.length === 0)
      reconcile(list, [
        el('li', { class: 'muted' }, t(this.conversationsLoaded ? 'conversations.empty' : 'conversations.loading')),
      ]);
    else reconcile(list, active);
    reconcile(byId('archived-list'), archived);
    byId('archived').hidden = archived.length === 0;
    byId('archived-summary').textContent = t('conversations.archived', { count: archived.length });
  }

  private conversationItem(conversation: Conversation, selected: boolean): HTMLElement {
    const last = conversation.last;
    const preview = el('span', { class: 'preview', 'data-role': 'preview' });
    if (last) {
      const direction = last.fromMe ? 'out' : 'in';
      preview.append(
        el('span', {
          class: `dir ${direction}`,
          'data-direction': direction,
          role: 'img',
          'aria-label': t(last.fromMe ? 'preview.out' : 'preview.in'),
          title: t(last.fromMe ? 'preview.out' : 'preview.in'),
        }),
      );
      if (last.fromMe && last.status) {
        const label = statusLabel(last.status);
        preview.append(
          el('span', { class: 'tick', 'data-tick': last.status, role: 'img', 'aria-label': label, title: label }),
        );
      }
      preview.append(el('span', { class: 'preview-text' }, last.text || typeLabel(last.type)));
    }
    return el(
      'li',
      { 'data-chat': conversation.chatId, 'data-name': conversation.name, class: selected ? 'chat selected' : 'chat' },
      el(
        'button',
        { type: 'button', class: 'pick', 'aria-current': selected ? 'true' : undefined },
        el('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(conversation.name)),
        el(
          'span',
          { class: 'line' },
          el('span', { class: 'name', 'data-role': 'name' }, conversation.name),
          conversation.isGroup ? el('span', { class: 'tag' }, t('conversations.group')) : undefined,
          el('time', { class: 'when', datetime: last?.timestamp }, shortTime(last?.timestamp ?? conversation.sortKey)),
        ),
        el(
          'span',
          { class: 'line' },
          preview,
          conversation.unread > 0
            ? el(
                'span',
                {
                  class: 'badge',
                  'data-role': 'unread',
                  'aria-label': t('conversations.unread', { count: conversation.unread }),
                },
                String(conversation.unread),
              )
            : undefined,
        ),
      ),
    );
  }

  // ------------------------------------------------------------------------------ search

  private searchSoon(delay: number): void {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => void this.search(), delay);
  }

  private async search(): Promise<void> {
    const q = byId<HTMLInputElement>('search').value.trim();
    const box = byId('search-results');
    this.searchAbort?.abort();
    if (!q || !this.session) {
      box.hidden = true;
      box.replaceChildren();
      byId('conversation-lists').hidden = false;
      return;
    }
    const abort = new AbortController();
    this.searchAbort = abort;
    box.hidden = false;
    byId('conversation-lists').hidden = true;
    box.replaceChildren(el('p', { class: 'muted' }, t('search.searching')));
    try {
      const found = obj(
        await call(this.info.token, 'GET', paths.search(this.session, q), undefined, { signal: abort.signal }),
      );
      if (abort.signal.aborted) return;
      const items: HTMLElement[] = [];
      const item = (chatId: string, name: string, detail: string | undefined) =>
        el(
          'li',
          { 'data-chat': chatId, 'data-name': name, class: 'chat' },
          el(
            'button',
            { type: 'button', class: 'pick' },
            el('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(name)),
            el('span', { class: 'line' }, el('span', { class: 'name', 'data-role': 'name' }, name)),
            detail ? el('span', { class: 'line muted small' }, detail) : undefined,
          ),
        );
      for (const doc of arrayOf(found?.conversations)) {
        const chatId = str(doc.chatId);
        if (chatId) items.push(item(chatId, str(doc.name) ?? str(doc.phone) ?? chatId.split('@')[0]!, str(doc.phone)));
      }
      for (const doc of arrayOf(found?.contacts)) {
        const jid = str(doc.jid);
        if (jid)
          items.push(
            item(jid, str(doc.name) ?? str(doc.pushName) ?? str(doc.phone) ?? jid.split('@')[0]!, t('search.contact')),
          );
      }
      box.replaceChildren(
        el('h3', { class: 'small' }, t('search.results')),
        items.length > 0 ? el('ul', { class: 'list' }, ...items) : el('p', { class: 'muted' }, t('search.none')),
      );
      if (found?.truncated === true) box.append(el('p', { class: 'muted small' }, t('search.truncated')));
    } catch (error) {
      if (abort.signal.aborted) return;
      box.replaceChildren();
      this.commandFailed(error);
    }
  }

  // ------------------------------------------------------------------------------ the open chat

  private openChat(chatId: string, nameHint?: string): void {
    const session = this.session;
    if (!session) return;
    const conversation = this.conversations.get(chatId);
    this.closeChat();
    this.chat = {
      chatId,
      name: conversation?.name ?? nameHint ?? chatId.split('@')[0]!,
      isGroup: conversation?.isGroup ?? chatId.endsWith('@g.us'),
    };
    document.body.classList.add('chat-open');
    byId('chat-title').textContent = this.chat.name;
    const number = chatId.split('@')[0]!;
    byId('chat-sub').textContent = number === this.chat.name ? '' : number;
    byId('chat').classList.remove('empty');
    this.thread = new Thread({
      client: this.client,
      token: () => this.info.token,
      session,
      chatId,
      isGroup: this.chat.isGroup,
      nameOf: (jid) => this.conversations.get(jid)?.name,
      onQuote: (message) => {
        this.quote = message;
        this.renderReply();
        byId('reply-text').focus();
      },
      onRetry: (message) => void this.retry(message),
      announce: (text) => (byId('announcer').textContent = text),
      notice: (text) => showNotice(text),
    });
    // Opening a chat marks it read, once, when it has unread messages.
    if (conversation && conversation.unread > 0 && maySend(this.info, session))
      call(this.info.token, 'POST', paths.read(session, chatId), { idempotencyKey: crypto.randomUUID() }).catch(
        (error: unknown) => this.commandFailed(error),
      );
    this.schedule();
    this.renderReply();
    byId('reply-text').focus({ preventScroll: true });
  }

  private closeChat(): void {
    this.thread?.close();
    this.thread = undefined;
    this.chat = undefined;
    this.quote = undefined;
    byId<HTMLInputElement>('reply-file').value = '';
    byId('chat').classList.add('empty');
    byId('chat-title').textContent = '';
    byId('chat-sub').textContent = '';
    byId('thread').replaceChildren(el('p', { class: 'muted center', 'data-i18n': 'thread.pick' }, t('thread.pick')));
    byId('new-messages').hidden = true;
    document.body.classList.remove('chat-open');
    this.renderReply();
  }

  // ------------------------------------------------------------------------------ the reply box

  private onTemplates(event: ChannelEvent): void {
    if (event.kind === 'snapshot') {
      if (event.reset) this.templates.clear();
      for (const doc of event.items) this.putTemplate(doc);
    } else if (event.kind === 'update') this.putTemplate(event.doc);
    else if (event.kind === 'remove') this.templates.delete(event.key);
    // A gateway without templates (or a server without the channel yet) leaves the list empty.
    this.renderReply();
  }

  private putTemplate(doc: Doc): void {
    const name = str(doc.name);
    const lang = str(doc.language);
    if (!name || !lang || doc._deleted === true || str(doc.status) !== 'APPROVED') this.templates.delete(doc._id);
    else this.templates.set(doc._id, { name, language: lang });
  }

  /** Whether free text may go to the open chat: outside Cloud API, always; on it, within 24 h of the customer's last message. */
  private windowOpen(): boolean {
    if (!this.session || !this.chat || !this.isCloudApi(this.session)) return true;
    const last = this.conversations.get(this.chat.chatId)?.lastInboundAt;
    const at = last ? Date.parse(last) : NaN;
    return !Number.isNaN(at) && Date.now() - at < WINDOW_MS;
  }

  private renderReply(): void {
    const form = byId<HTMLFormElement>('reply');
    const open = this.chat !== undefined;
    form.hidden = !open;
    if (!open || !this.session) return;
    const allowed = maySend(this.info, this.session);
    const windowOpen = this.windowOpen();
    const text = byId<HTMLTextAreaElement>('reply-text');
    const fileInput = byId<HTMLInputElement>('reply-file');
    text.hidden = !windowOpen;
    text.disabled = !windowOpen;
    byId('reply-attach').hidden = !windowOpen;
    fileInput.disabled = !windowOpen;
    const closedNote = byId('window-closed');
    closedNote.hidden = windowOpen;
    // Only a closed window has the note (a hidden one is not there for whoever looks for it).
    if (windowOpen) closedNote.removeAttribute('data-role');
    else closedNote.dataset.role = 'window-closed';
    const select = byId<HTMLSelectElement>('template');
    select.hidden = windowOpen;
    select.disabled = windowOpen;
    byId('template-label').hidden = windowOpen;
    if (!windowOpen) {
      closedNote.replaceChildren(el('span', {}, t('reply.windowClosed')));
      if (this.templates.size === 0) closedNote.append(' ', el('span', {}, t('reply.templateNone')));
      const chosen = select.value;
      const options = [el('option', { value: '' }, t('reply.templatePick'))];
      for (const [id, template] of [...this.templates].sort((a, b) => a[1].name.localeCompare(b[1].name)))
        options.push(
          el('option', { value: id }, t('reply.templateOption', { name: template.name, language: template.language })),
        );
      select.replaceChildren(...options);
      select.value = this.templates.has(chosen) ? chosen : '';
    }
    byId('reply-rights').hidden = allowed;
    byId('reply-rights').textContent = allowed ? '' : t('reply.noSendRights');
    const quote = byId('reply-quote');
    quote.hidden = !this.quote;
    byId('reply-quote-clear').hidden = !this.quote;
    quote.textContent = this.quote
      ? `${t('reply.quoting')} ${this.quote.text ?? this.thread?.typeLabel(this.quote) ?? ''}`
      : '';
    const file = fileInput.files?.[0];
    byId('reply-file-name').textContent = file ? t('reply.file', { name: file.name }) : '';
    byId('reply-file-clear').hidden = !file;
  }

  private async submit(): Promise<void> {
    if (!this.chat || !this.session || !this.thread) return;
    const textField = byId<HTMLTextAreaElement>('reply-text');
    const fileInput = byId<HTMLInputElement>('reply-file');
    let outgoing: Outgoing;
    let file: File | undefined;
    if (!this.windowOpen()) {
      const template = this.templates.get(byId<HTMLSelectElement>('template').value);
      if (!template) {
        byId('template').focus();
        return;
      }
      outgoing = { template: { name: template.name, language: template.language } };
    } else {
      const text = textField.value.trim();
      file = fileInput.files?.[0];
      if (!text && !file) return;
      outgoing = {
        ...(text ? { text } : {}),
        ...(file ? { fileName: file.name } : {}),
        ...(this.quote && !this.quote.messageId.startsWith('pending:')
          ? { quotedMessageId: this.quote.messageId }
          : {}),
      };
    }
    textField.value = '';
    fileInput.value = '';
    this.quote = undefined;
    this.renderReply();
    await this.send(outgoing, file);
  }

  private async retry(message: Message): Promise<void> {
    const outgoing: Outgoing = message.resend ?? {
      ...(message.text ? { text: message.text } : {}),
      ...(message.media && str(message.media.hash)
        ? {
            media: {
              type: mediaKind(str(message.media.mimeType) ?? '', message.type),
              hash: str(message.media.hash)!,
              ...(str(message.media.mimeType) ? { mimeType: str(message.media.mimeType)! } : {}),
              ...(str(message.media.fileName) ? { fileName: str(message.media.fileName)! } : {}),
            },
          }
        : {}),
    };
    if (message.messageId.startsWith('pending:')) this.thread?.dropPending(message.messageId.slice(8));
    // A retry is a new message: a new idempotency key, explicitly.
    await this.send(outgoing, undefined);
  }

  /** Sends with a new idempotency key: a pending bubble at once, the upload first when there is a file. */
  private async send(outgoing: Outgoing, file: File | undefined): Promise<void> {
    const session = this.session!;
    const chatId = this.chat!.chatId;
    const thread = this.thread!;
    const key = crypto.randomUUID();
    thread.addPending(key, outgoing, this.info.sub);
    try {
      let media = outgoing.media;
      if (file) {
        showNotice(() => t('reply.uploading'));
        const stored = obj(
          await call(this.info.token, 'POST', paths.upload(session, file.name), undefined, {
            raw: file,
            contentType: file.type,
          }),
        );
        const hash = str(stored?.hash);
        if (!hash) throw new ApiError(500, 'upload answered no hash');
        const mimeType = str(stored?.mimeType) ?? (file.type || 'application/octet-stream');
        media = { type: mediaKind(mimeType, undefined), hash, mimeType, fileName: file.name };
        outgoing = { ...outgoing, media };
        thread.update(key, outgoing);
        clearNotice();
      }
      const answer = obj(
        await call(this.info.token, 'POST', paths.send(session), {
          to: chatId,
          ...(outgoing.text ? { text: outgoing.text } : {}),
          ...(media ? { media } : {}),
          ...(outgoing.template ? { template: outgoing.template } : {}),
          // The quoted message: sent for when the command API takes it (today it keeps to the fields it knows).
          ...(outgoing.quotedMessageId ? { quotedMessageId: outgoing.quotedMessageId } : {}),
          idempotencyKey: key,
        }),
      );
      const commandId = str(answer?.commandId);
      if (commandId) thread.accepted(key, commandId);
    } catch (error) {
      const reason =
        error instanceof ApiError ? error.message : error instanceof Error ? t('notice.network') : String(error);
      thread.refused(key, error instanceof ApiError && error.status === 413 ? t('notice.tooLarge') : reason, outgoing);
      this.commandFailed(error);
    }
  }

  // ------------------------------------------------------------------------------ painting

  private schedule(): void {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      if (app !== this) return;
      this.renderSessions();
      this.renderConversations();
      if (this.chat) byId('chat-title').textContent = this.chat.name;
    });
  }
}

function arrayOf(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.map(obj).filter((v): v is Record<string, unknown> => v !== undefined) : [];
}

function initials(name: string): string {
  if (!/\p{L}/u.test(name)) return '#';
  const letters = name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => [...word][0] ?? '')
    .join('');
  return letters.toUpperCase() || '#';
}

/** The send's media kind from a MIME type (the command API's kinds). */
function mediaKind(mime: string, type: string | undefined): 'image' | 'video' | 'audio' | 'document' | 'sticker' {
  if (type === 'sticker') return 'sticker';
  if (type === 'voice') return 'audio';
  if (type === 'image' || type === 'video' || type === 'audio' || type === 'document') return type;
  if (mime.startsWith('image/')) return 'image';
  if (mime.startsWith('video/')) return 'video';
  if (mime.startsWith('audio/')) return 'audio';
  return 'document';
}

// ---------------------------------------------------------------------------------------------------
// Start: the token from `#token=` (then removed from the URL), else this tab's storage, else the form.

function start(info: TokenInfo): void {
  sessionStorage.setItem(TOKEN_KEY, info.token);
  byId('signin-view').hidden = true;
  byId('app').hidden = false;
  byId('signout').hidden = false;
  byId('whoami').textContent = info.sub;
  app = new App(info);
}

setLanguage(language());
langSelect.value = language();
translateStatic();

const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash !== null) history.replaceState(null, '', location.pathname + location.search);
const stored = fromHash ?? sessionStorage.getItem(TOKEN_KEY);
const info = stored ? tokenInfo(stored.trim()) : undefined;
if (!stored) signIn();
else if (!info) signIn(() => t('signin.malformed'));
else if (info.exp * 1000 <= Date.now()) signIn(() => t('signin.expired'));
else start(info);
