/**
 * Reversible encoding of an id into one NATS subject token.
 *
 * A token may never contain `.`, `*`, `>` or white space, and a JID (`34612345678@s.whatsapp.net`) has
 * dots. Every character outside a small safe set is written as `~` and two upper-case hex digits per
 * UTF-8 byte, so ids stay readable (`34612345678@s~2Ewhatsapp~2Enet`) and decode exactly.
 */
const SAFE = /^[A-Za-z0-9_\-@:+=]$/;

export class InvalidTokenError extends Error {
  readonly code = 'INVALID_TOKEN';
}

export function encodeToken(id: string): string {
  if (id.length === 0) throw new InvalidTokenError('an id encoded into a subject token must not be empty');
  let out = '';
  for (const char of id) {
    if (SAFE.test(char)) out += char;
    else for (const byte of Buffer.from(char, 'utf8')) out += `~${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeToken(token: string): string {
  if (!/^(?:[A-Za-z0-9_\-@:+=]|~[0-9A-F]{2})+$/.test(token))
    throw new InvalidTokenError(`not an encoded token: ${JSON.stringify(token)}`);
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    if (token[i] === '~') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i += 1;
    }
  }
  const decoded = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  if (encodeToken(decoded) !== token)
    throw new InvalidTokenError(`not a canonical encoded token: ${JSON.stringify(token)}`);
  return decoded;
}
