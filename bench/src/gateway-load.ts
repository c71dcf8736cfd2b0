/**
 * The load generator, in its own process: autocannon with a freshly signed Inbox Hub delivery per
 * request (unique ids, realistic size). Arguments: url path connections seconds [rate]. Prints the
 * autocannon result as JSON.
 */
import autocannon from 'autocannon';
import { sampleBody, signSample } from '@puente/gateway/samples';

const [url, path, connections, seconds, rate] = process.argv.slice(2);
let n = 0;
const secrets = { kissflow: '', inboxhub: process.env.INBOXHUB_WEBHOOK_SECRET!, evolution: '', waha: '', whatsappAppSecret: '' };
const result = await autocannon({
  url: url!,
  connections: Number(connections),
  duration: Number(seconds),
  ...(rate ? { overallRate: Number(rate) } : {}),
  requests: [
    {
      method: 'POST',
      path: path!,
      setupRequest: (request) => {
        const signed = signSample('inboxhub', sampleBody('inboxhub', n++), secrets);
        return { ...request, headers: signed.headers, body: signed.body };
      },
    },
  ],
});
process.stdout.write(`${JSON.stringify({ rps: result.requests.average, total: result.requests.total, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts })}\n`);
