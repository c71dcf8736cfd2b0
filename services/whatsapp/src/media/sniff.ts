/** Leading bytes of the file types WhatsApp carries most, and their MIME types. */
const SIGNATURES: readonly { at: number; bytes: readonly number[]; mimeType: string }[] = [
  { at: 0, bytes: [0xff, 0xd8, 0xff], mimeType: 'image/jpeg' },
  { at: 0, bytes: [0x89, 0x50, 0x4e, 0x47], mimeType: 'image/png' },
  { at: 0, bytes: [0x47, 0x49, 0x46, 0x38], mimeType: 'image/gif' },
  { at: 8, bytes: [0x57, 0x45, 0x42, 0x50], mimeType: 'image/webp' },
  { at: 0, bytes: [0x25, 0x50, 0x44, 0x46], mimeType: 'application/pdf' },
  { at: 0, bytes: [0x4f, 0x67, 0x67, 0x53], mimeType: 'audio/ogg' },
  { at: 4, bytes: [0x66, 0x74, 0x79, 0x70], mimeType: 'video/mp4' },
];

/**
 * The MIME type of a file whose provider and webhook named none: a few well-known signatures, else
 * `application/octet-stream` (served as a download, never rendered as something it may not be).
 */
export function sniffMimeType(bytes: Uint8Array): string {
  const found = SIGNATURES.find(({ at, bytes: signature }) => signature.every((b, i) => bytes[at + i] === b));
  return found?.mimeType ?? 'application/octet-stream';
}

/** The MIME type kept: the provider's, else the webhook's, else sniffed. A generic `application/octet-stream` names nothing. */
export function mediaTypeOf(bytes: Uint8Array, ...named: (string | undefined)[]): string {
  const known = named.map((type) => type?.trim()).find((type) => type && type !== 'application/octet-stream');
  return known ?? sniffMimeType(bytes);
}
