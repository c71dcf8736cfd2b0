/**
 * The load generator, in its own process: autocannon replaying pre-signed Inbox Hub deliveries (unique
 * ids, realistic size). Arguments: url path connections seconds [rate]. Prints the
 * autocannon result as JSON.
 */
import autocannon from 'autocannon';
import { sampleBody, signSample } from '@puente/gateway';

const [url, path, connections, seconds, rate] = process.argv.slice(2);
const secrets = {
  kissflow: '',
  inboxhub: process.env.INBOXHUB_WEBHOOK_SECRET!,
  evolution: '',
  waha: '',
  whatsappAppSecret: '',
};
// Signed before the clock starts, so the generator spends its CPU sending, not signing (on two cores it
// shares them with the gateway and NATS). Unique deliveries: more than the run can send.
const signed = Array.from({ length: Number(process.env.BENCH_PRESIGNED ?? 150_000) }, (_, n) =>
  signSample('inboxhub', sampleBody('inboxhub', n), secrets),
);
let n = 0;
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
        const sample = signed[n++ % signed.length]!;
        return { ...request, headers: sample.headers, body: sample.body };
      },
    },
  ],
});
process.stdout.write(
  `${JSON.stringify({ rps: result.requests.average, total: result.requests.total, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, wrapped: n > signed.length })}\n`,
);
