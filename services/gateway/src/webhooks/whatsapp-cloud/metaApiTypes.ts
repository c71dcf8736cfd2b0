import { z } from 'zod';

/** Meta's `whatsapp_business_account` webhook body, in Meta's own casing (only what Puente reads). */
const Media = z
  .object({
    id: z.string().optional(),
    mime_type: z.string().optional(),
    sha256: z.string().optional(),
    caption: z.string().optional(),
    filename: z.string().optional(),
    voice: z.boolean().optional(),
    link: z.string().optional(),
  })
  .loose();

export const MetaMessage = z
  .object({
    id: z.string().min(1),
    from: z.string().min(1).optional(),
    user_id: z.string().min(1).optional(),
    timestamp: z.string().regex(/^\d+$/, 'Unix seconds as a string'),
    type: z.string().min(1),
    context: z.object({ id: z.string().optional(), from: z.string().optional() }).loose().optional(),
    text: z.object({ body: z.string() }).loose().optional(),
    image: Media.optional(),
    video: Media.optional(),
    audio: Media.optional(),
    document: Media.optional(),
    sticker: Media.optional(),
    location: z
      .object({
        latitude: z.number(),
        longitude: z.number(),
        name: z.string().optional(),
        address: z.string().optional(),
      })
      .loose()
      .optional(),
    reaction: z.object({ message_id: z.string(), emoji: z.string().optional() }).loose().optional(),
    interactive: z
      .object({
        type: z.string(),
        button_reply: z.object({ id: z.string(), title: z.string() }).loose().optional(),
        list_reply: z.object({ id: z.string(), title: z.string() }).loose().optional(),
        nfm_reply: z.object({ body: z.string().optional(), response_json: z.string().optional() }).loose().optional(),
      })
      .loose()
      .optional(),
    button: z.object({ payload: z.string().optional(), text: z.string() }).loose().optional(),
    contacts: z.array(z.unknown()).optional(),
  })
  .loose()
  .refine((m) => m.from !== undefined || m.user_id !== undefined, {
    message: 'a message needs from or user_id',
    path: ['from'],
  });
export type MetaMessage = z.infer<typeof MetaMessage>;

export const MetaStatus = z
  .object({
    id: z.string().min(1),
    status: z.string().min(1),
    timestamp: z.string().regex(/^\d+$/, 'Unix seconds as a string'),
    recipient_id: z.string().optional(),
    recipient_user_id: z.string().optional(),
    user_id: z.string().optional(),
    errors: z
      .array(
        z
          .object({
            code: z.union([z.number(), z.string()]).optional(),
            title: z.string().optional(),
            message: z.string().optional(),
          })
          .loose(),
      )
      .optional(),
  })
  .loose();
export type MetaStatus = z.infer<typeof MetaStatus>;

export const MetaContact = z
  .object({
    wa_id: z.string().optional(),
    user_id: z.string().optional(),
    profile: z.object({ name: z.string().optional() }).loose().optional(),
  })
  .loose();

export const MetaChangeValue = z
  .object({
    messaging_product: z.string().optional(),
    metadata: z.object({ phone_number_id: z.string().min(1), display_phone_number: z.string().optional() }).loose(),
    contacts: z.array(MetaContact).optional(),
    messages: z.array(MetaMessage).optional(),
    statuses: z.array(MetaStatus).optional(),
    errors: z.array(z.unknown()).optional(),
  })
  .loose();

export const MetaWebhook = z.object({
  object: z.literal('whatsapp_business_account'),
  entry: z.array(
    z
      .object({
        id: z.string().optional(),
        changes: z.array(z.object({ field: z.string(), value: z.unknown() }).loose()),
      })
      .loose(),
  ),
});
