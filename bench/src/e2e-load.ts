import { Agent, request } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { sampleSecrets, signSample } from '@puente/gateway';

/**
 * The e2e benchmark's load generator, in a worker thread: it signs and posts Kissflow webhooks for rows
 * `R<n>` and writes each post's start time (high-resolution wall time) into the shared `posted` array at
 * index n. A thread of its own has its own heap, so its garbage (HTTP client, signing) never pauses the
 * main thread, which time-stamps the hops.
 */
export interface LoadSetup {
  gatewayUrl: string;
  dataset: string;
  posted: SharedArrayBuffer;
}

/** A run: `burst` posts rows [from, from + count) with `concurrency` in flight; `paced` posts at `rate`/s for `seconds`. */
export type LoadCommand =
  | { kind: 'burst'; from: number; count: number; concurrency: number }
  | { kind: 'paced'; from: number; rate: number; seconds: number };

export type LoadReply = { ok: true; posted: number } | { ok: false; error: string };

const setup = workerData as LoadSetup;
const posted = new Float64Array(setup.posted);
/** The services run with NODE_ENV=development and no secrets set: the development values. */
const secrets = sampleSecrets();
const now = () => performance.timeOrigin + performance.now();

// node:http with keep-alive rather than fetch: far less garbage per request, so shorter pauses here too.
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const gateway = new URL(setup.gatewayUrl);

function post(n: number): Promise<void> {
  const row = `R${n}`;
  const sample = signSample(
    'kissflow',
    { _id: row, Name: `Documento ${row}`, Monto: n, _modified_at: new Date().toISOString() },
    secrets,
    { params: { dataset: setup.dataset } },
  );
  const send = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          agent,
          host: gateway.hostname,
          port: gateway.port,
          method: 'POST',
          path: sample.path,
          headers: { ...sample.headers, 'content-length': Buffer.byteLength(sample.body) },
        },
        (res) => {
          res.resume();
          res.once('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`gateway answered ${res.statusCode}`)),
          );
        },
      );
      req.once('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive socket the server closed as it idled, just as this request went out on it: the
        // request never reached the gateway, so it is sent again on a fresh socket (as Node's docs advise).
        if (req.reusedSocket && error.code === 'ECONNRESET') send().then(resolve, reject);
        else reject(error);
      });
      req.end(sample.body);
    });
  posted[n] = now();
  return send();
}

async function run(command: LoadCommand): Promise<number> {
  if (command.kind === 'burst') {
    let next = command.from;
    const end = command.from + command.count;
    await Promise.all(
      Array.from({ length: command.concurrency }, async () => {
        while (next < end) await post(next++);
      }),
    );
    return command.count;
  }
  // Paced: the i-th post is due at start + i/rate; a late one goes at once (no catching up by skipping).
  const start = performance.now();
  let i = 0;
  let outstanding = 0;
  let failure: Error | undefined;
  let drained: (() => void) | undefined;
  for (; performance.now() - start < command.seconds * 1000 && !failure; i++) {
    if (command.from + i >= posted.length) throw new Error('e2e load: more posts than the timing arrays hold');
    const wait = start + (i * 1000) / command.rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    outstanding++;
    post(command.from + i).then(
      () => void (--outstanding === 0 && drained?.()),
      (error: Error) => {
        failure = error;
        if (--outstanding === 0) drained?.();
      },
    );
  }
  if (outstanding > 0) await new Promise<void>((resolve) => (drained = resolve));
  if (failure) throw failure;
  return i;
}

parentPort!.on('message', (command: LoadCommand) => {
  run(command).then(
    (count) => parentPort!.postMessage({ ok: true, posted: count } satisfies LoadReply),
    (error: unknown) => parentPort!.postMessage({ ok: false, error: (error as Error).message } satisfies LoadReply),
  );
});
