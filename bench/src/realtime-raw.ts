import { connect } from 'nats';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * The benchmark's baseline: a bare `ws` server that does only what broadcasting needs (a subscribe
 * frame adds the socket to its channel; every `chg.>` message becomes the same update frame, built once
 * and sent to the channel's sockets). No auth, no snapshot reads, no versions, no limits.
 */
const port = Number(process.env.RAW_PORT);
const nc = await connect({ servers: process.env.NATS_URL! });
const channels = new Map<string, Set<WebSocket>>();
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as { op: string; channel?: string };
    if (frame.op !== 'subscribe' || !frame.channel) return;
    const set = channels.get(frame.channel) ?? new Set<WebSocket>();
    set.add(ws);
    channels.set(frame.channel, set);
    ws.send(JSON.stringify({ op: 'snapshot', channel: frame.channel, items: [], epoch: 'raw', position: 0 }));
  });
  ws.on('close', () => channels.forEach((set) => set.delete(ws)));
});
let n = 0;
nc.subscribe('chg.>', {
  callback: (_error, msg) => {
    const channel = msg.subject.slice(4, msg.subject.lastIndexOf('.'));
    const set = channels.get(channel);
    if (!set) return;
    const notice = JSON.parse(new TextDecoder().decode(msg.data)) as { doc: unknown };
    const bytes = JSON.stringify({ op: 'update', channel, doc: notice.doc, epoch: 'raw', position: ++n });
    for (const ws of set) ws.send(bytes);
  },
});
await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
process.send?.({ ready: true });
process.on('message', (message: { stop?: boolean }) => {
  if (message.stop) void nc.close().then(() => process.exit(0));
});
