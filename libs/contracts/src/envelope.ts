import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/** CloudEvents 1.0 envelope: every event and command on the bus travels in one. */
export const CloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  /** Versioned, e.g. `whatsapp.message.received.v1`. */
  type: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v\d+$/, 'a versioned type such as whatsapp.message.received.v1'),
  subject: z.string().min(1).optional(),
  time: z.iso.datetime({ offset: true }),
  datacontenttype: z.literal('application/json').default('application/json'),
  data: z.unknown(),
});
export type CloudEvent<T = unknown> = Omit<z.infer<typeof CloudEventSchema>, 'data'> & { data: T };

/** Builds an envelope; `time` defaults to now and `id` to a random UUID. */
export function cloudEvent<T>(fields: { type: string; source: string; data: T; subject?: string; id?: string; time?: string }): CloudEvent<T> {
  return {
    specversion: '1.0',
    id: fields.id ?? randomUUID(),
    source: fields.source,
    type: fields.type,
    ...(fields.subject === undefined ? {} : { subject: fields.subject }),
    time: fields.time ?? new Date().toISOString(),
    datacontenttype: 'application/json',
    data: fields.data,
  };
}
