import { format, languages, type CatalogueKey, type Language } from '../catalogue.js';

/** The page's language: `select#lang`, kept in localStorage, default Spanish. */
const LANG_KEY = 'puente.inbox.lang';
let current: Language = readLanguage();

function readLanguage(): Language {
  const stored = localStorage.getItem(LANG_KEY);
  return (languages as readonly string[]).includes(stored ?? '') ? (stored as Language) : languages[0];
}

export function language(): Language {
  return current;
}

export function setLanguage(next: Language): void {
  current = next;
  localStorage.setItem(LANG_KEY, next);
  document.documentElement.lang = next;
}

/** A catalogue string in the page's language. */
export function t(key: CatalogueKey, values?: Record<string, string | number>): string {
  return format(current, key, values);
}

/**
 * Translates the static markup: `data-i18n` (text), `data-i18n-placeholder`, `data-i18n-label`
 * (aria-label and title).
 */
export function translateStatic(root: ParentNode = document): void {
  for (const node of root.querySelectorAll<HTMLElement>('[data-i18n]'))
    node.textContent = t(node.dataset.i18n as CatalogueKey);
  for (const node of root.querySelectorAll<HTMLInputElement>('[data-i18n-placeholder]'))
    node.placeholder = t(node.dataset.i18nPlaceholder as CatalogueKey);
  for (const node of root.querySelectorAll<HTMLElement>('[data-i18n-label]')) {
    const text = t(node.dataset.i18nLabel as CatalogueKey);
    node.setAttribute('aria-label', text);
    node.title = text;
  }
  document.title = t('app.title');
}

type Child = Node | string | undefined | false;

/** An element with attributes (`class`, `data-*`, `aria-*`, ...) and children; text is always set as text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined) node.setAttribute(name, value);
  for (const child of children) if (child !== undefined && child !== false) node.append(child);
  return node;
}

/** The element with this id (the page's markup has it; a missing one is a bug worth failing loudly on). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return node as T;
}

/**
 * Puts `nodes` in `parent` in this order, moving only what is out of place and removing what is not
 * listed (so scrolling, focus and loaded media survive a re-render).
 */
export function reconcile(parent: Element, nodes: readonly Node[]): void {
  let cursor = parent.firstChild;
  for (const node of nodes) {
    if (cursor === node) {
      cursor = cursor.nextSibling;
      continue;
    }
    parent.insertBefore(node, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    parent.removeChild(cursor);
    cursor = next;
  }
}

/** A string field of a read-model document, or undefined. */
export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A number field of a read-model document, or undefined. */
export function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** An object field of a read-model document, or undefined. */
export function obj(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** Intl formatters are costly to make (a thread's render formats hundreds of times): one per language and style. */
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${current}|${JSON.stringify(options)}`;
  let made = formatters.get(key);
  if (!made) formatters.set(key, (made = new Intl.DateTimeFormat(current, options)));
  return made;
}

/** A time as the page's language shows it: the hour today, else the date. */
export function shortTime(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return formatter(sameDay ? { hour: '2-digit', minute: '2-digit' } : { dateStyle: 'short' }).format(date);
}

export function fullTime(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : formatter({ dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

/** The local calendar day of a time, `YYYY-MM-DD`, for day separators. */
export function dayOf(iso: string | undefined): string {
  const date = new Date(iso ?? 0);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** A day separator's label: today, yesterday, or the date in the page's language. */
export function dayLabel(day: string): string {
  const today = dayOf(new Date().toISOString());
  const yesterday = dayOf(new Date(Date.now() - 86_400_000).toISOString());
  if (day === today) return t('thread.today');
  if (day === yesterday) return t('thread.yesterday');
  const [y, m, d] = day.split('-').map(Number);
  return formatter({ dateStyle: 'full' }).format(new Date(y!, m! - 1, d!));
}

export function hourOf(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : formatter({ hour: '2-digit', minute: '2-digit' }).format(date);
}
