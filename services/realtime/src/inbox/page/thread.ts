import type { ChannelEvent, Doc, RealtimeClient, Subscription } from '@puente/realtime-client';
import { channels } from '@puente/realtime-client';
import type { CatalogueKey } from '../catalogue.js';
import { call, paths } from './api.js';
import { byId, dayLabel, dayOf, el, fullTime, hourOf, obj, reconcile, str, t } from './dom.js';

/** A message of `wa_messages` as the thread reads it (every field checked before use). */
export interface Message {
  _id: string;
  messageId: string;
  direction: 'in' | 'out';
  /** What the bubble shows: the read model's status, `unknown` for a send whose result was lost. */
  status: string | undefined;
  type: string;
  text: string | undefined;
  from: string | undefined;
  pushName: string | undefined;
  sentBy: string | undefined;
  timestamp: string;
  quotedMessageId: string | undefined;
  reaction: { messageId: string; emoji: string } | undefined;
  media: Record<string, unknown> | undefined;
  reason: string | undefined;
  commandId: string | undefined;
  /** For a retry: what was sent. */
  resend?: Outgoing;
}

/** What a send carries (a retry sends it again under a new idempotency key). */
export interface Outgoing {
  text?: string;
  media?: { type: string; hash: string; mimeType?: string; fileName?: string };
  template?: { name: string; language: string };
  /** The message this one replies to. */
  quotedMessageId?: string;
  /** A local file not uploaded yet (shown while it uploads). */
  fileName?: string;
}

export function readMessage(doc: Doc): Message | undefined {
  const messageId = str(doc.messageId);
  if (!messageId || doc._deleted === true) return undefined;
  const direction = doc.direction === 'out' ? 'out' : 'in';
  const error = obj(doc.error);
  let status = str(doc.status);
  // A send whose result was lost stays `pending` with an error: the provider may or may not have it.
  if (status === 'pending' && error) status = 'unknown';
  const reaction = obj(doc.reaction);
  const reactionTarget = str(reaction?.messageId);
  const reason = error ? [str(error.code), str(error.message)].filter(Boolean).join(': ') : undefined;
  return {
    _id: doc._id,
    messageId,
    direction,
    status: direction === 'out' ? (status ?? 'sent') : undefined,
    type: str(doc.type) ?? 'text',
    text: str(doc.text) ?? str(obj(doc.media)?.caption),
    from: str(doc.from),
    pushName: str(doc.pushName),
    sentBy: str(doc.sentBy),
    timestamp: str(doc.timestamp) ?? new Date(0).toISOString(),
    quotedMessageId: str(doc.quotedMessageId),
    reaction: reactionTarget ? { messageId: reactionTarget, emoji: str(reaction?.emoji) ?? '' } : undefined,
    media: obj(doc.media),
    reason: reason || undefined,
    commandId: str(doc.commandId),
  };
}

/** Order of the thread: by time, then id. */
function compare(a: Message, b: Message): number {
  return a.timestamp < b.timestamp
    ? -1
    : a.timestamp > b.timestamp
      ? 1
      : a.messageId < b.messageId
        ? -1
        : a.messageId > b.messageId
          ? 1
          : 0;
}

export interface ThreadHost {
  client: RealtimeClient;
  token: () => string;
  session: string;
  chatId: string;
  isGroup: boolean;
  /** The name of a chat member by JID, when the page knows it. */
  nameOf: (jid: string) => string | undefined;
  onQuote: (message: Message) => void;
  onRetry: (message: Message) => void;
  announce: (text: string) => void;
  notice: (text: () => string) => void;
}

/** A signed media link and when it stops working (ms). */
interface Link {
  url: string;
  expires: number;
}

const NEAR_BOTTOM_PX = 48;
const NEAR_TOP_PX = 160;
const STATUS_KEYS: Record<string, CatalogueKey> = {
  pending: 'status.pending',
  sent: 'status.sent',
  delivered: 'status.delivered',
  read: 'status.read',
  played: 'status.played',
  failed: 'status.failed',
  unknown: 'status.unknown',
};

export function statusLabel(status: string): string {
  const key = STATUS_KEYS[status];
  return key ? t(key) : status;
}

/**
 * One open chat: its messages newest page first (`order: 'newest'`), older pages as the agent scrolls
 * back (`more()`), live updates, optimistic bubbles for sends in flight, and the scroll rules (follow
 * the newest unless scrolled up, then `#new-messages`).
 */
export class Thread {
  private readonly docs = new Map<string, Message>();
  private readonly pending = new Map<string, Message>();
  /** Each bubble with what it was built from: rebuilt only when its message, reactions or quote changed. */
  private readonly bubbles = new Map<string, { message: Message; signature: string; node: HTMLElement }>();
  private readonly days = new Map<string, HTMLElement>();
  private readonly links = new Map<string, Link | Promise<Link | undefined>>();
  private readonly sub: Subscription;
  private readonly box = byId('thread');
  private readonly marker = byId<HTMLButtonElement>('new-messages');
  private readonly top = el('p', { class: 'thread-top', 'data-role': 'top' });
  private complete = false;
  private loaded = false;
  private loadingOlder = false;
  private newest: string | undefined;
  private queued = false;
  private closed = false;
  private readonly onScroll = () => this.scrolled();
  /** Whether the agent is at the newest message: media that loads later keeps it there. */
  private pinned = true;
  private readonly onMediaLoad = () => {
    if (this.pinned) this.box.scrollTop = this.box.scrollHeight;
  };

  constructor(private readonly host: ThreadHost) {
    this.box.replaceChildren(el('p', { class: 'muted center', 'data-i18n': 'thread.loading' }, t('thread.loading')));
    this.marker.hidden = true;
    this.box.addEventListener('scroll', this.onScroll, { passive: true });
    // `load` and `loadedmetadata` do not bubble: listened for while capturing.
    this.box.addEventListener('load', this.onMediaLoad, true);
    this.box.addEventListener('loadedmetadata', this.onMediaLoad, true);
    this.sub = host.client.subscribe(
      channels.whatsappMessages(host.session, host.chatId),
      (event) => this.onEvent(event),
      { order: 'newest' },
    );
  }

  close(): void {
    this.closed = true;
    this.sub.unsubscribe();
    this.box.removeEventListener('scroll', this.onScroll);
    this.box.removeEventListener('load', this.onMediaLoad, true);
    this.box.removeEventListener('loadedmetadata', this.onMediaLoad, true);
  }

  /** A send in flight: shown at once as `pending`, keyed `pending:<idempotency key>`. */
  addPending(key: string, outgoing: Outgoing, sentBy: string): Message {
    const message: Message = {
      _id: `pending:${key}`,
      messageId: `pending:${key}`,
      direction: 'out',
      status: 'pending',
      type: outgoing.template ? 'template' : (outgoing.media?.type ?? (outgoing.fileName ? 'document' : 'text')),
      text: outgoing.text ?? (outgoing.template ? outgoing.template.name : undefined),
      from: undefined,
      pushName: undefined,
      sentBy,
      timestamp: new Date().toISOString(),
      quotedMessageId: outgoing.quotedMessageId,
      reaction: undefined,
      media: undefined,
      reason: undefined,
      commandId: undefined,
      resend: outgoing,
    };
    this.pending.set(key, message);
    this.forceBottom = true;
    this.schedule();
    return message;
  }

  /** The command API accepted the send: its document (by command id) replaces the pending bubble. */
  accepted(key: string, commandId: string): void {
    const message = this.pending.get(key);
    if (!message) return;
    message.commandId = commandId;
    if ([...this.docs.values()].some((doc) => doc.commandId === commandId)) this.pending.delete(key);
    this.schedule();
  }

  /** The command API refused the send: the pending bubble fails with the reason (and can be retried). */
  refused(key: string, reason: string, outgoing: Outgoing): void {
    const message = this.pending.get(key);
    if (!message) return;
    message.status = 'failed';
    message.reason = reason;
    message.resend = outgoing;
    this.schedule();
  }

  /** The pending bubble of a send whose upload finished: what a retry sends. */
  update(key: string, outgoing: Outgoing): void {
    const message = this.pending.get(key);
    if (message) message.resend = outgoing;
  }

  dropPending(key: string): void {
    this.pending.delete(key);
    this.schedule();
  }

  /** Re-renders every bubble (after a language change). */
  refresh(): void {
    this.bubbles.clear();
    this.days.clear();
    this.schedule();
  }

  private forceBottom = true;

  private onEvent(event: ChannelEvent): void {
    if (this.closed) return;
    switch (event.kind) {
      case 'snapshot':
        if (event.reset) {
          this.docs.clear();
          this.forceBottom = true;
        }
        for (const doc of event.items) this.put(doc);
        this.complete = event.complete;
        this.loaded = true;
        this.loadingOlder = false;
        break;
      case 'update':
        this.put(event.doc);
        break;
      case 'remove':
        this.docs.delete(event.key);
        break;
      case 'error':
        this.host.notice(() => t('notice.failed', { detail: event.message }));
        this.loaded = true;
        break;
    }
    this.schedule();
  }

  private put(doc: Doc): void {
    const message = readMessage(doc);
    if (!message) {
      this.docs.delete(doc._id);
      return;
    }
    this.docs.set(doc._id, message);
    if (message.commandId)
      for (const [key, pending] of this.pending) if (pending.commandId === message.commandId) this.pending.delete(key);
  }

  /**
   * Renders once after the current task: every change a WebSocket frame brings is in the DOM before the
   * next paint (no frame of delay), and a snapshot page of many documents is still one render.
   */
  private schedule(): void {
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      if (!this.closed) this.render();
    });
  }

  private render(): void {
    const box = this.box;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
    const before = { height: box.scrollHeight, top: box.scrollTop };
    // A send's own document (`<session>:<command id>`) and the provider's document of it are two writes: for
    // a moment a reader can hold both. The provider's is the message; the command's is not shown beside it.
    const provided = new Set(
      [...this.docs.values()].flatMap((m) => (m.commandId && m.messageId !== m.commandId ? [m.commandId] : [])),
    );
    const all = [
      ...[...this.docs.values()].filter((m) => !(m.messageId === m.commandId && provided.has(m.commandId))),
      ...this.pending.values(),
    ];
    const reactions = new Map<string, string[]>();
    const byMessageId = new Map<string, Message>();
    const shown: Message[] = [];
    for (const message of all) {
      byMessageId.set(message.messageId, message);
      if (message.reaction) {
        if (message.reaction.emoji)
          reactions.set(message.reaction.messageId, [
            ...(reactions.get(message.reaction.messageId) ?? []),
            message.reaction.emoji,
          ]);
      } else shown.push(message);
    }
    shown.sort(compare);

    if (!this.loaded && shown.length === 0) return;
    const nodes: HTMLElement[] = [];
    this.top.textContent = this.loadingOlder
      ? t('thread.loadingOlder')
      : this.complete
        ? shown.length === 0
          ? t('thread.empty')
          : t('thread.start')
        : '';
    nodes.push(this.top);
    let lastDay: string | undefined;
    for (const message of shown) {
      const day = dayOf(message.timestamp);
      if (day !== lastDay) {
        lastDay = day;
        let separator = this.days.get(day);
        if (!separator) {
          separator = el('p', { class: 'day', 'data-role': 'day' }, el('span', {}, dayLabel(day)));
          this.days.set(day, separator);
        }
        nodes.push(separator);
      }
      nodes.push(this.bubble(message, reactions.get(message.messageId) ?? [], byMessageId));
    }
    const firstOld = box.querySelector('[data-id]');
    reconcile(box, nodes);

    const newest = shown.at(-1);
    const grewAtEnd = newest !== undefined && newest.messageId !== this.newest;
    const prepended = firstOld !== null && shown.length > 0 && nodes.indexOf(firstOld as HTMLElement) > 2;
    if (this.forceBottom || (atBottom && grewAtEnd)) {
      box.scrollTop = box.scrollHeight;
      this.forceBottom = false;
      this.marker.hidden = true;
    } else if (prepended) {
      box.scrollTop = before.top + (box.scrollHeight - before.height);
    } else if (grewAtEnd && this.newest !== undefined) {
      this.marker.hidden = false;
    }
    if (grewAtEnd && this.newest !== undefined && newest.direction === 'in')
      this.host.announce(t('thread.announce', { name: this.senderName(newest) ?? '' }));
    this.newest = newest?.messageId;
    this.pinned = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
    // The first page may not fill the box: ask for the next one.
    if (this.loaded && !this.complete && box.scrollHeight <= box.clientHeight + NEAR_TOP_PX) this.older();
  }

  private scrolled(): void {
    const box = this.box;
    this.pinned = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
    if (this.pinned) this.marker.hidden = true;
    if (box.scrollTop < NEAR_TOP_PX) this.older();
  }

  private older(): void {
    if (this.loadingOlder || this.complete || !this.loaded) return;
    if (!this.sub.more()) return;
    this.loadingOlder = true;
    this.top.textContent = t('thread.loadingOlder');
  }

  /** Scrolls to the newest message (the `#new-messages` marker). */
  toBottom(): void {
    this.box.scrollTop = this.box.scrollHeight;
    this.marker.hidden = true;
    this.pinned = true;
  }

  private senderName(message: Message): string | undefined {
    if (message.direction === 'out') return message.sentBy ?? t('bubble.you');
    return (
      message.pushName ?? (message.from ? (this.host.nameOf(message.from) ?? message.from.split('@')[0]) : undefined)
    );
  }

  private bubble(message: Message, reactions: string[], byId: Map<string, Message>): HTMLElement {
    const quoted = message.quotedMessageId ? byId.get(message.quotedMessageId) : undefined;
    // A message object is replaced on every change to it (pending ones are changed in place: their
    // status and reason are in the signature).
    const signature = `${message.status}|${message.reason}|${reactions.join(' ')}|${quoted?.text}|${quoted?.type}`;
    const held = this.bubbles.get(message._id);
    if (held && held.message === message && held.signature === signature) return held.node;
    const node = this.build(message, reactions, quoted);
    this.bubbles.set(message._id, { message, signature, node });
    return node;
  }

  private build(message: Message, reactions: string[], quoted: Message | undefined): HTMLElement {
    const out = message.direction === 'out';
    const node = el('article', {
      class: `bubble ${out ? 'out' : 'in'}`,
      'data-id': message.messageId,
      'data-direction': message.direction,
      ...(out && message.status ? { 'data-status': message.status } : {}),
    });
    if (this.host.isGroup && !out)
      node.append(el('p', { class: 'sender', 'data-role': 'sender' }, this.senderName(message) ?? ''));
    if (message.quotedMessageId) {
      node.append(
        el(
          'blockquote',
          { 'data-role': 'quote' },
          quoted ? (quoted.text ?? this.typeLabel(quoted)) : t('bubble.quoteMissing'),
        ),
      );
    }
    const media = this.media(message);
    if (media) node.append(media);
    const text = message.text ?? (message.media || message.resend?.fileName ? undefined : this.typeLabel(message));
    if (text !== undefined) node.append(el('p', { class: 'text', 'data-role': 'text' }, text));
    else if (message.resend?.fileName && !message.media)
      node.append(el('p', { class: 'text', 'data-role': 'text' }, t('reply.file', { name: message.resend.fileName })));
    if (reactions.length > 0)
      node.append(
        el(
          'p',
          { class: 'reactions', 'data-role': 'reactions', 'aria-label': t('bubble.reactions') },
          reactions.join(' '),
        ),
      );
    if (out && (message.status === 'failed' || message.status === 'unknown')) {
      const why =
        message.status === 'unknown'
          ? `${t('status.unknownHelp')}${message.reason ? ` (${message.reason})` : ''}`
          : t('bubble.reason', { reason: message.reason ?? t('status.failed') });
      node.append(el('p', { class: 'reason', 'data-role': 'reason' }, why));
    }
    const meta = el('p', { class: 'meta' });
    if (out && message.sentBy)
      meta.append(el('span', { class: 'agent', 'data-role': 'agent' }, t('bubble.agent', { agent: message.sentBy })));
    meta.append(
      el('time', { datetime: message.timestamp, title: fullTime(message.timestamp) }, hourOf(message.timestamp)),
    );
    if (out && message.status) {
      const label = statusLabel(message.status);
      meta.append(
        el('span', { class: 'tick', 'data-tick': message.status, role: 'img', 'aria-label': label, title: label }),
      );
    }
    node.append(meta);
    const actions = el('div', { class: 'actions' });
    if (!message.messageId.startsWith('pending:'))
      actions.append(el('button', { type: 'button', 'data-action': 'quote', class: 'link' }, t('bubble.quote')));
    if (out && message.status === 'failed' && (message.resend || message.text || message.media))
      actions.append(el('button', { type: 'button', 'data-action': 'retry', class: 'link' }, t('bubble.retry')));
    if (actions.childElementCount > 0) node.append(actions);
    node.addEventListener('click', (event) => {
      const action = (event.target as Element).closest<HTMLElement>('[data-action]')?.dataset.action;
      if (action === 'quote') this.host.onQuote(message);
      if (action === 'retry') this.host.onRetry(message);
    });
    return node;
  }

  typeLabel(message: Message): string {
    return message.type === 'text' ? '' : typeLabel(message.type);
  }

  /** The message's media, inline from the media store (a signed link: the token never goes in a URL). */
  private media(message: Message): HTMLElement | undefined {
    const media = message.media;
    if (!media) return undefined;
    const state = str(media.state);
    if (state === 'unavailable') {
      const error = obj(media.error);
      return el(
        'p',
        { class: 'media-note' },
        t('media.unavailable', { reason: str(error?.message) ?? str(error?.code) ?? '' }),
      );
    }
    if (state !== 'stored') return el('p', { class: 'media-note' }, t('media.pending'));
    // A send not accepted yet: its document becomes the provider's (another id) once sent.
    if (message.direction === 'out' && message.status === 'pending') {
      const name = str(media.fileName);
      return name ? el('p', { class: 'media-note' }, t('reply.file', { name })) : undefined;
    }
    const mime = str(media.mimeType) ?? '';
    const kind =
      message.type === 'image' ||
      message.type === 'sticker' ||
      (message.type !== 'document' && mime.startsWith('image/'))
        ? 'img'
        : message.type === 'video' || (message.type !== 'document' && mime.startsWith('video/'))
          ? 'video'
          : message.type === 'audio' ||
              message.type === 'voice' ||
              (message.type !== 'document' && mime.startsWith('audio/'))
            ? 'audio'
            : 'a';
    const fileName = str(media.fileName) ?? `${message.messageId}${extensionOf(mime)}`;
    let node: HTMLElement;
    if (kind === 'img')
      node = el('img', { 'data-role': 'media', alt: message.text ?? t('media.image'), class: 'media' });
    else if (kind === 'video')
      node = el('video', { 'data-role': 'media', controls: '', preload: 'metadata', class: 'media' });
    else if (kind === 'audio') node = el('audio', { 'data-role': 'media', controls: '', preload: 'metadata' });
    else {
      node = el(
        'a',
        { 'data-role': 'media', class: 'document', download: fileName, href: '#' },
        t('media.download', { name: fileName }),
      );
      node.addEventListener('click', (event) => {
        const link = this.links.get(message.messageId);
        if (link && !(link instanceof Promise) && link.expires > Date.now() + 5_000) return;
        event.preventDefault();
        this.links.delete(message.messageId);
        void this.link(message.messageId).then((fresh) => {
          if (!fresh) return;
          (node as HTMLAnchorElement).href = fresh.url;
          node.click();
        });
      });
    }
    void this.link(message.messageId).then((link) => {
      if (!link) return;
      if (node instanceof HTMLAnchorElement) node.href = link.url;
      else node.setAttribute('src', link.url);
    });
    return node;
  }

  private async link(messageId: string): Promise<Link | undefined> {
    const held = this.links.get(messageId);
    if (held instanceof Promise) return held;
    if (held && held.expires > Date.now() + 5_000) return held;
    const asked = call(this.host.token(), 'POST', paths.mediaLink(this.host.session, messageId))
      .then((body) => {
        const answer = obj(body);
        const url = str(answer?.url);
        const expires = Date.parse(str(answer?.expiresAt) ?? '');
        if (!url || !url.startsWith('/')) return undefined;
        const link = { url, expires: Number.isNaN(expires) ? Date.now() + 60_000 : expires };
        this.links.set(messageId, link);
        return link;
      })
      .catch(() => {
        this.links.delete(messageId);
        return undefined;
      });
    this.links.set(messageId, asked);
    return asked;
  }
}

function extensionOf(mime: string): string {
  const sub = mime.split('/')[1]?.split(';')[0];
  return sub && /^[a-z0-9.+-]{1,10}$/.test(sub) ? `.${sub}` : '';
}

/** A message type as the catalogue names it (previews and bubbles without text). */
export function typeLabel(type: string): string {
  switch (type) {
    case 'image':
      return t('media.image');
    case 'video':
      return t('media.video');
    case 'audio':
    case 'voice':
      return t('media.audio');
    case 'document':
      return t('media.document');
    case 'sticker':
      return t('type.sticker');
    case 'location':
      return t('type.location');
    case 'contacts':
      return t('type.contacts');
    default:
      return t('type.other', { type });
  }
}
