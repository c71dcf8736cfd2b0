import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import type { RouteSpec } from '@puente/runtime';
import { inboxHtml } from './html.js';
import { inboxCss } from './styles.js';

/** The inbox's Content-Security-Policy: its own origin only, no inline script or style, no framing. */
export const INBOX_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** Headers every inbox answer carries. */
export const INBOX_HEADERS = {
  'content-security-policy': INBOX_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
} as const;

/** The bare module names the page imports, and where realtime serves them from under the asset root. */
const VENDOR: Record<string, string> = {
  '@puente/realtime-client': 'vendor/realtime-client.js',
  uqr: 'vendor/uqr.js',
};

interface Asset {
  body: Buffer;
  type: string;
}

/** The page's assets, by path under `/inbox/<hash>/`, and that hash (of every asset's content). */
export interface InboxAssets {
  hash: string;
  base: string;
  files: Map<string, Asset>;
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return jsFiles(path);
    return entry.name.endsWith('.js') ? [path] : [];
  });
}

const withoutSourceMap = (text: string) => text.replace(/^\/\/# sourceMappingURL=.*$/gm, '');

/**
 * Reads the page's modules (built by `tsc -b` into `dist/inbox-web` from `src/inbox/page`), the two
 * modules it imports by name (the realtime client, the QR encoder) and the stylesheet, and names them
 * by a hash of their content: the HTML (never cached) points at `/inbox/<hash>/...`, which may be kept
 * for a year. Bare imports are rewritten to the served copies (a browser has no node_modules).
 */
export function loadInboxAssets(webDir = fileURLToPath(new URL('../inbox-web/', import.meta.url))): InboxAssets {
  const sources = new Map<string, string>();
  for (const file of jsFiles(webDir))
    sources.set(relative(webDir, file).split(sep).join('/'), readFileSync(file, 'utf8'));
  if (!sources.has('page/main.js')) throw new Error(`the inbox page is not built: no page/main.js in ${webDir}`);
  for (const [name, path] of Object.entries(VENDOR))
    sources.set(path, readFileSync(fileURLToPath(import.meta.resolve(name)), 'utf8'));
  sources.set('inbox.css', inboxCss);
  const digest = createHash('sha256');
  for (const [path, text] of [...sources].sort(([a], [b]) => a.localeCompare(b))) digest.update(`${path}\0${text}\0`);
  const hash = digest.digest('hex').slice(0, 16);
  const base = `/inbox/${hash}/`;
  const files = new Map<string, Asset>();
  for (const [path, text] of sources) {
    if (path.endsWith('.css')) {
      files.set(path, { body: Buffer.from(text), type: 'text/css; charset=utf-8' });
      continue;
    }
    const linked = withoutSourceMap(text).replace(
      /(\bfrom\s*|\bimport\s*)(['"])([^'"]+)\2/g,
      (all, keyword: string, quote: string, name: string) =>
        VENDOR[name] ? `${keyword}${quote}${base}${VENDOR[name]}${quote}` : all,
    );
    files.set(path, { body: Buffer.from(linked), type: 'text/javascript; charset=utf-8' });
  }
  return { hash, base, files };
}

function send(res: ServerResponse, status: number, type: string, body: Buffer | string, cache: string): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, {
    ...INBOX_HEADERS,
    'content-type': type,
    'content-length': bytes.length,
    'cache-control': cache,
  });
  res.end(bytes);
}

/**
 * `GET /inbox` (the inbox page, `no-cache`) and `GET /inbox/<hash>/<asset>` (its modules and stylesheet,
 * content-hashed, cached for a year). Every answer carries the CSP and `nosniff`. The assets are read
 * once, on the first request.
 */
export function inboxRoutes(load: () => InboxAssets = loadInboxAssets): RouteSpec[] {
  let assets: InboxAssets | undefined;
  const current = () => (assets ??= load());
  const page: RouteSpec['handler'] = (_req, res) => {
    send(res, 200, 'text/html; charset=utf-8', inboxHtml(current().base), 'no-cache');
  };
  return [
    { method: 'GET', path: '/inbox', handler: page },
    { method: 'GET', path: '/inbox/', handler: page },
    {
      method: 'GET',
      path: '/inbox/*asset',
      handler: (_req, res, { params }) => {
        const { hash, files } = current();
        const [given, ...rest] = (params.asset ?? '').split('/');
        const asset = given === hash ? files.get(rest.join('/')) : undefined;
        if (!asset) {
          send(res, 404, 'text/plain; charset=utf-8', 'not found\n', 'no-store');
          return;
        }
        send(res, 200, asset.type, asset.body, 'public, max-age=31536000, immutable');
      },
    },
  ];
}
