import WebSocket from 'ws';

/**
 * The benchmark's load generator, in its own process: opens CONNECTIONS WebSockets to URL, the first
 * HOT of them subscribed to the first channel and the rest spread over the others, then counts the
 * update frames that arrive and their latency from the publisher's clock (`doc.fields.sentAt`, a
 * high-resolution wall time comparable across processes) until told to stop.
 */
const url = process.env.LOAD_URL!;
const connections = Number(process.env.LOAD_CONNECTIONS ?? 5_000);
const hot = Number(process.env.LOAD_HOT ?? 1_000);
const channels = JSON.parse(process.env.LOAD_CHANNELS!) as string[];
const now = () => performance.timeOrigin + performance.now();

let frames = 0;
let counting = false;
let closed = 0;
let errors = 0;
const latencies: number[] = [];
const sockets: WebSocket[] = [];

function open(i: number): Promise<void> {
  const channel = i < hot ? channels[0]! : channels[1 + ((i - hot) % (channels.length - 1))]!;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets.push(ws);
    ws.on('open', () => ws.send(JSON.stringify({ op: 'subscribe', channel })));
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"op":"update"')) {
        if (!counting) return;
        frames++;
        const sentAt = (JSON.parse(text) as { doc: { fields: { sentAt: number } } }).doc.fields.sentAt;
        latencies.push(now() - sentAt);
      } else if (text.includes('"op":"snapshot"')) resolve();
      else if (text.includes('"op":"error"')) {
        errors++;
        reject(new Error(text));
      }
    });
    ws.on('close', () => closed++);
    ws.on('error', (error) => {
      errors++;
      reject(error);
    });
  });
}

for (let i = 0; i < connections; i += 250)
  await Promise.all(Array.from({ length: Math.min(250, connections - i) }, (_, j) => open(i + j)));
process.send?.({ ready: true });
process.on('message', (message: { count?: boolean; stop?: boolean }) => {
  if (message.count) counting = true;
  if (message.stop) {
    counting = false;
    process.send?.({ frames, latencies, closed, errors }, () => {
      for (const ws of sockets) ws.terminate();
      process.exit(0);
    });
  }
});
