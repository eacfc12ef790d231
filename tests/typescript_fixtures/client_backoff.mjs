// How long the compiled client.ts waits before each reconnection, against a loopback server
// whose streams open and end at once (header auth). Usage: node client_backoff.mjs <folder of
// client.js>. Math.random is 0.5, so each delay is half its ceiling; the delays the client asks
// setTimeout for are recorded as they are asked for. Prints {requests, delays} as JSON.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const delays = [];
const setTimeoutOfNode = globalThis.setTimeout;
globalThis.setTimeout = (callback, delay, ...rest) => {
  if (String(callback).includes("#connect")) delays.push(delay); // the client's reconnection
  return setTimeoutOfNode(callback, delay, ...rest);
};
Math.random = () => 0.5;

const { openStream } = await import(pathToFileURL(join(process.argv[2], "client.js")).href);

const event = 'id: 1\nevent: stock_updated\ndata: {"id": 1}\n\n';
const expired = 'event: expired\ndata: {"reason": "token_expired"}\n\n';
const bodies = [
  "retry: 10\n\n", // opens, then ends: nothing delivered
  "", // opens, then ends
  ": heartbeat\n\n", // a heartbeat, then ends: the connection worked
  expired, // expires at once
  event + expired, // an event, then expires: it worked
];
let sixth;
const sixthRequest = new Promise((resolve) => (sixth = resolve));
const requests = [];
const server = createServer((request, response) => {
  requests.push(request.url);
  response.writeHead(200, { "Content-Type": "text/event-stream" });
  const body = bodies[requests.length - 1];
  if (body === undefined) sixth();
  else response.end(body);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

const stream = openStream(
  { path: "/inventory/events/stock/stream", events: ["stock_updated"] },
  {
    baseUrl: `http://127.0.0.1:${server.address().port}`,
    auth: { kind: "header", token: () => "token" },
    refreshToken: async () => {},
    handlers: {},
    backoff: { initial: 10, max: 60000 },
  },
);
await sixthRequest;
stream.close();
server.closeAllConnections();
server.close();
console.log(JSON.stringify({ requests, delays }));
