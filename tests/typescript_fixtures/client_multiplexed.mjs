// connect() against a real HTTP server on loopback, in Node.js: no Web Locks there, so the
// client falls back to a connection of its own (role "alone"), as a browser without them does.
// Two channels subscribed together open one stream of both; unsubscribing one reconnects with
// the other alone, resuming from the last id; a `reset` reaches the subscriptions it names.
// Usage: node client_multiplexed.mjs <folder of client.js>. Prints what happened, as JSON.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const { connect } = await import(pathToFileURL(join(process.argv[2], "client.js")).href);

const record = { requests: [], delivered: [], resets: [], channelResets: [], role: "" };
let onDelivered = () => {};
const deliveredCount = (count) =>
  new Promise((resolve) => {
    onDelivered = () => record.delivered.length >= count && resolve();
    onDelivered();
  });
let closedByClient;
const closed = new Promise((resolve) => (closedByClient = resolve));

const frame = (id, type, data) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
const connections = [
  // 1: both channels: an event of each, and one of a channel this page did not subscribe to
  (request, response) => {
    response.write(frame(1, "stock.updated", { n: 1 }));
    response.write(frame(2, "notices.posted", { n: 2 }));
    response.write(frame(3, "other.thing", { n: 3 }));
  },
  // 2: stock alone, after 3: 3 again (skipped), a reset, then an event after it
  (request, response) => {
    request.on("close", () => closedByClient());
    response.write(frame(3, "other.thing", { n: 3 }));
    response.write(frame(4, "reset", { replayable: false, channels: ["stock"] }));
    response.write(frame(5, "stock.updated", { n: 5 }));
  },
];

const server = createServer((request, response) => {
  record.requests.push({ url: request.url, authorization: request.headers.authorization });
  const play = connections[record.requests.length - 1];
  if (play === undefined) return void response.writeHead(500).end();
  response.writeHead(200, { "Content-Type": "text/event-stream" });
  play(request, response);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

const stock = { name: "stock", path: "/stock/stream", events: ["updated"] };
const notices = { name: "notices", path: "/notices/stream", events: ["posted"] };
const realtime = connect({
  baseUrl: `http://127.0.0.1:${server.address().port}`,
  auth: { kind: "header", token: () => "t1" },
  share: { key: "alice" },
  onReset: (meta) => record.resets.push([meta.id, meta.channels]),
  backoff: { initial: 10, max: 100 },
});
const push = (channel, type) => (payload, meta) => {
  record.delivered.push([channel, type, meta.id, payload.n]);
  onDelivered();
};
realtime.subscribe(stock, {
  handlers: { updated: push("stock", "updated") },
  onReset: (meta) => record.channelResets.push(["stock", meta.id]),
});
const subscription = realtime.subscribe(notices, {
  handlers: { posted: push("notices", "posted") },
  onReset: (meta) => record.channelResets.push(["notices", meta.id]),
});
record.role = realtime.role;

await deliveredCount(2);
while (realtime.lastEventId !== 3) await new Promise(setImmediate); // frame 3 read, not delivered
subscription.close();
await deliveredCount(3);
realtime.close();
await closed;
record.lastEventId = realtime.lastEventId;
server.close();
console.log(JSON.stringify(record));
