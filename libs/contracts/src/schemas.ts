import { z } from 'zod';
import { EventDefinitions, EventTypes, type EventType } from './events/registry.js';

/** The JSON Schema of one event type: the CloudEvents envelope with that type's data. */
export function jsonSchemaOf(type: EventType): Record<string, unknown> {
  const definition = EventDefinitions[type];
  const envelope = z.object({
    specversion: z.literal('1.0'),
    id: z.string().min(1),
    source: z.string().min(1),
    type: z.literal(type),
    subject: z.string().min(1),
    time: z.iso.datetime({ offset: true }),
    datacontenttype: z.literal('application/json'),
    data: definition.data,
  });
  return {
    $id: `https://puente.dev/schemas/${type}.json`,
    title: type,
    description: `${definition.description} Stream ${definition.stream}.`,
    ...z.toJSONSchema(envelope, { target: 'draft-2020-12' }),
  };
}

/** File name → JSON text for every event type, as `npm run contracts:schema` writes them into docs/schemas/. */
export function allJsonSchemas(): Map<string, string> {
  return new Map(EventTypes.map((type) => [`${type}.json`, `${JSON.stringify(jsonSchemaOf(type), null, 2)}\n`]));
}
