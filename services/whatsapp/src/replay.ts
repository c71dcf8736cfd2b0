import { Collections } from '@puente/contracts';
import type { ReadModel, Replayable } from '@puente/projection';
import { loadConfig } from '@puente/runtime';
import { Config, type WhatsAppConfig } from './config.js';
import { consumersFor } from './consumers.js';
import { whatsappGroup, whatsappRoutes } from './readModels.js';

/** The WhatsApp read models as `puente replay whatsapp` rebuilds them: this configuration's consumer and sessions. */
export function whatsappReadModel(config: Pick<WhatsAppConfig, 'WHATSAPP_SESSIONS'>): ReadModel {
  const sessions = config.WHATSAPP_SESSIONS;
  return {
    name: 'whatsapp',
    group: whatsappGroup,
    consumer: consumersFor(sessions).projections,
    routes: whatsappRoutes,
    // Sessions are `_id` in wa_sessions, a `session` field elsewhere.
    scope: (collection) =>
      sessions ? { [collection === Collections.waSessions ? '_id' : 'session']: { $in: sessions } } : undefined,
  };
}

/** The read models this service owns that `puente replay` can rebuild. */
export const replayable: readonly Replayable[] = [
  { name: 'whatsapp', readModel: (env) => whatsappReadModel(loadConfig(Config, env)) },
];
