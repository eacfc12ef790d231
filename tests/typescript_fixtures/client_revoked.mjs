// A stream revoked twice, played by a real HTTP server on loopback against the compiled client.ts
// (header auth). The first time, refreshToken gives a new token and the client resumes with it;
// the second time it gives the same token, and the client stops with status "revoked".
// Usage: node client_revoked.mjs <folder of client.js>. Prints what happened, as JSON.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const { openStream } = await import(pathToFileURL(join(process.argv[2], "client.js")).href);

const record = { requests: [], delivered: [], statuses: [], refreshes: 0 };
let halted;
const revokedForGood = new Promise((resolve) => (halted = resolve));

const revoked = 'event: revoked\ndata: {"reason": "revoked"}\n\n';
const connections = [
  () => `retry: 10\n\nid: 1\nevent: stock_updated\ndata: {"id": 1}\n\n${revoked}`,
  () => `retry: 10\n\nid: 2\nevent: stock_updated\ndata: {"id": 2}\n\n${revoked}`,
];

const server = createServer((request, response) => {
  record.requests.push({ url: request.url, authorization: request.headers.authorization });
  const play = connections[record.requests.length - 1];
  if (play === undefined) {
    response.writeHead(500).end();
    return;
  }
  response.writeHead(200, { "Content-Type": "text/event-stream" });
  response.end(play());
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

let token = "t1";
const stream = openStream(
  { path: "/inventory/events/stock/stream", events: ["stock_updated"] },
  {
    baseUrl: `http://127.0.0.1:${server.address().port}`,
    auth: { kind: "header", token: () => token },
    refreshToken: async () => {
      record.refreshes += 1;
      if (record.refreshes === 1) token = "t2"; // signed in again; the second time, not
      // The client decides in the microtasks after this returns, and a reconnection starts by
      // saying "connecting" at once: after them, the statuses tell whether it reconnects.
      else setImmediate(halted);
    },
    handlers: {
      stock_updated: (payload, meta) => record.delivered.push({ id: meta.id, payload }),
    },
    onStatus: (status) => record.statuses.push(status),
    backoff: { initial: 10, max: 100 },
  },
);

await revokedForGood;
record.lastEventId = stream.lastEventId;
stream.close(); // closing a stream that stopped says nothing more
server.close();
console.log(JSON.stringify(record));
