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
