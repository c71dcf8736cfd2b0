import { z } from 'zod';

/**
 * The operator CLI's own settings file (`~/.config/puente/config.json`, or `PUENTE_CONFIG`): tunnel
 * agent credentials that belong to a developer, never to the repository.
 */
export const CliConfigFile = z.strictObject({
  tunnel: z
    .strictObject({
      via: z.enum(['ngrok', 'cloudflared']).optional(),
      ngrok: z
        .strictObject({
          authtoken: z.string().min(1).optional(),
          /** A reserved domain, e.g. `puente-ana.ngrok.app`. */
          domain: z.string().min(1).optional(),
        })
        .optional(),
      cloudflared: z
        .strictObject({
          /** A named tunnel's token (`cloudflared tunnel token <name>`); with it, `hostname` is the public name routed to it. */
          token: z.string().min(1).optional(),
          hostname: z.string().min(1).optional(),
        })
        .optional(),
    })
    .optional(),
});
export type CliConfigFile = z.infer<typeof CliConfigFile>;
