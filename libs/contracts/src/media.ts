import type { MessageType } from './events/whatsapp.js';

const BY_MIME_FAMILY: Record<string, MessageType> = {
  image: 'image',
  video: 'video',
  audio: 'audio',
  document: 'document',
  application: 'document',
  text: 'document',
};

/** A media message's type from its MIME type's family (`image/…`, `video/…`, `audio/…`); anything else is a document. */
export function messageTypeOfMime(mime: string): MessageType {
  return BY_MIME_FAMILY[mime.split('/')[0]!] ?? 'document';
}

/** The usual MIME type of a file extension, for media whose sender named none (lower-case extension, no dot). */
const MIME_BY_EXTENSION: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  mp4: 'video/mp4',
  '3gp': 'video/3gpp',
  ogg: 'audio/ogg; codecs=opus',
  opus: 'audio/ogg; codecs=opus',
  mp3: 'audio/mpeg',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
  amr: 'audio/amr',
  pdf: 'application/pdf',
  txt: 'text/plain',
  csv: 'text/csv',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ppt: 'application/vnd.ms-powerpoint',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  zip: 'application/zip',
};

/** The MIME type a file name's extension stands for (`factura.PDF` → `application/pdf`), if it is a known one. */
export function mimeOfFileName(name: string): string | undefined {
  const extension = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
  return extension ? MIME_BY_EXTENSION[extension] : undefined;
}
