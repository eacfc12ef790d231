// A stream's life, played by a real HTTP server on loopback against the compiled client.ts
// (header auth: the fetch-based stream). Usage: node client_scenario.mjs <folder of client.js>.
// Prints what the client delivered and what the server saw, as JSON, for the test to check.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const { openStream } = await import(pathToFileURL(join(process.argv[2], "client.js")).href);

const record = { requests: [], delivered: [], resets: [], statuses: [], refreshes: 0 };
const waiters = [];
/** Resolves once the client has delivered the event with this payload id. */
const delivered = (payloadId) =>
  new Promise((resolve) => {
    if (record.delivered.some((event) => event.payload.id === payloadId)) resolve();
    else waiters.push({ payloadId, resolve });
  });
let streamClosedByClient;
const closedByClient = new Promise((resolve) => (streamClosedByClient = resolve));

const frames = {
  // retry, a comment, an event with CRLF endings and two data lines, written in pieces (which
  // may reach the client merged: test_typescript_client.py feeds the parser split chunks)
  first: ["retry: 10\r\n\r\n: keep-alive\r\n", "id: 1\r\nevent: stock_upd", 'ated\r\ndata: {"id":\r', '\ndata: 1}\r\n\r\n'],
  second: ['id: 2\revent: stock_updated\rdata: {"id": 2}\r\r'], // CR endings
};

async function send(response, chunks) {
  for (const chunk of chunks) {
    response.write(chunk);
    await new Promise(setImmediate); // let each chunk leave on its own
  }
}

const connections = [
  // 1: refused; the client renews its token and retries
  async (request, response) => {
    response.writeHead(401, { "WWW-Authenticate": "Bearer" }).end();
  },
  // 2: two events, then the network fails
  async (request, response) => {
    response.writeHead(200, { "Content-Type": "text/event-stream" });
    await send(response, frames.first);
    await send(response, frames.second);
    await delivered(2);
    response.socket.destroy();
  },
  // 3: resumed after id 2: a replay of 2 (not delivered again), 3, then the token expires
  async (request, response) => {
    response.writeHead(200, { "Content-Type": "text/event-stream" });
    await send(response, [
      'retry: 10\n\nid: 2\nevent: stock_updated\ndata: {"id": 2}\n\n',
      'id: 3\nevent: stock_updated\ndata: {"id": 3}\n\n',
      'event: expired\ndata: {"reason": "token_expired"}\n\n',
    ]);
    response.end();
  },
  // 4: resumed after id 3 with the new token: a reset to an older id, then an event after it
  async (request, response) => {
    response.writeHead(200, { "Content-Type": "text/event-stream" });
    request.on("close", () => streamClosedByClient());
    await send(response, [
      'retry: 10\n\nid: 1\nevent: reset\ndata: {"replayable": false}\n\n',
      'id: 2\nevent: stock_updated\ndata: {"id": 20}\n\n',
    ]);
  },
];

const server = createServer((request, response) => {
  record.requests.push({ url: request.url, authorization: request.headers.authorization });
  const play = connections[record.requests.length - 1];
  if (play === undefined) response.writeHead(500).end();
  else void play(request, response);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

let token = "t1";
const stream = openStream(
  { path: "/inventory/events/stock/stream", events: ["stock_updated"] },
  {
    baseUrl: `http://127.0.0.1:${server.address().port}`,
    // The scheme word, if the test names one (argv[3]); else the client's default, Bearer.
    auth: { kind: "header", token: () => token, scheme: process.argv[3] },
    refreshToken: async () => {
      record.refreshes += 1;
      token = `t${record.refreshes + 1}`;
    },
    handlers: {
      stock_updated: (payload, meta) => {
        record.delivered.push({ id: meta.id, payload });
        for (const waiter of waiters) if (waiter.payloadId === payload.id) waiter.resolve();
      },
    },
    onReset: (meta) => record.resets.push(meta.id),
    onStatus: (status) => record.statuses.push(status),
    backoff: { initial: 10, max: 100 },
  },
);

await delivered(20);
stream.close();
await closedByClient;
record.lastEventId = stream.lastEventId;
server.close();
console.log(JSON.stringify(record));
