/**
 * Every Puente service, with the variable of its HTTP port (health and, for two, the API) and its default:
 * what `npm start` starts and what `puente status` asks. Shipped with the runtime (the image has no
 * `@puente/stack`).
 */
export const SERVICES = [
  { name: 'gateway', portVariable: 'GATEWAY_PORT', port: 8080 },
  { name: 'kissflow-sync', portVariable: 'HEALTH_PORT', port: 8081 },
  { name: 'whatsapp', portVariable: 'HEALTH_PORT', port: 8082 },
  { name: 'bitrix-sync', portVariable: 'HEALTH_PORT', port: 8083 },
  { name: 'realtime', portVariable: 'REALTIME_PORT', port: 8090 },
] as const;
export type ServiceName = (typeof SERVICES)[number]['name'];
