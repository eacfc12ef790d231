// Tabs of one browser sharing a stream, in one Node.js process: a fake Web Locks API shared by
// the tabs (granted in request order, a tab's locks freed when it dies), Node's BroadcastChannel,
// and a loopback server playing the multiplexed route: every stream opens with the id it resumes
// after (`id: <n>` and `retry:`, no event), then replays the stored events after it and sends
// the new ones; a stream naming the channel "legacy" is refused (400).
// Each tab's token names it ("tok-<tab>"). A tab dies with `kill(tab)`: no `close()`, no `bye`.
// Usage: node shared_tabs.mjs <folder of client.js> <scenario>. Prints what happened, as JSON.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const { connect } = await import(pathToFileURL(join(process.argv[2], "client.js")).href);

// ---- A fake Web Locks API: each tab's `navigator.locks` ----
const held = new Map(); // lock name -> { tab, release }
const waiting = new Map(); // lock name -> [request, ...]
let queried = Promise.resolve(); // `query()` answers once this settles

function grant(name, request) {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    held.delete(name);
    const next = (waiting.get(name) ?? []).shift();
    if (next !== undefined) grant(name, next);
  };
  held.set(name, { tab: request.tab, release });
  Promise.resolve()
    .then(() => request.callback({ name }))
    .then(
      (value) => (release(), request.resolve(value)),
      (error) => (release(), request.reject(error)),
    );
}

function locksOf(tab) {
  return {
    request(name, optionsOrCallback, maybeCallback) {
      const callback = maybeCallback ?? optionsOrCallback;
      const options = maybeCallback === undefined ? {} : optionsOrCallback;
      return new Promise((resolve, reject) => {
        const request = { tab, callback, resolve, reject };
        options.signal?.addEventListener("abort", () => {
          const queue = waiting.get(name) ?? [];
          if (queue.includes(request)) {
            queue.splice(queue.indexOf(request), 1);
            reject(new DOMException("aborted", "AbortError"));
          }
        });
        if (held.has(name)) waiting.set(name, [...(waiting.get(name) ?? []), request]);
        else grant(name, request);
      });
    },
    async query() {
      await queried;
      return { held: [...held.keys()].map((name) => ({ name })), pending: [] };
    },
  };
}

// ---- Tabs ----
const dead = new Set();
const channelsOf = new Map(); // tab -> its BroadcastChannels
let opening = "";

class TabChannel extends BroadcastChannel {
  #closed = false;
  constructor(name) {
    super(name);
    channelsOf.set(opening, [...(channelsOf.get(opening) ?? []), this]);
  }
  close() {
    this.#closed = true;
    super.close();
  }
  postMessage(message) {
    if (!this.#closed) super.postMessage(message); // a dead tab's code posts into nothing
  }
}
globalThis.BroadcastChannel = TabChannel;

const realFetch = globalThis.fetch;
const signals = []; // every request's AbortSignal: one not aborted is a stream the client holds
globalThis.fetch = (url, init) => {
  const tab = (init?.headers?.Authorization ?? "").split("tok-")[1];
  signals.push(init.signal);
  return dead.has(tab) ? new Promise(() => {}) : realFetch(url, init); // its page is gone
};

const tabs = {};

/** A tab: its Realtime, what it received ([channel, type, id]), the statuses it showed. */
function openTab(tab, options = {}) {
  opening = tab;
  globalThis.navigator = { locks: locksOf(tab) };
  const record = { received: [], resets: [], statuses: [] };
  const realtime = connect({
    baseUrl: base,
    auth: { kind: "header", token: () => `tok-${tab}` },
    share: { key: "alice" },
    backoff: { initial: 10, max: 100 },
    onStatus: (status) => record.statuses.push(status),
    onReset: (meta) => record.resets.push(meta.id),
    ...options,
  });
  opening = "";
  tabs[tab] = { realtime, ...record };
  return tabs[tab];
}

function subscribe(tab, name) {
  const channel = { name, path: `/${name}/stream`, events: ["happened"] };
  const handler = (payload, meta) => tabs[tab].received.push([name, meta.id]);
  return tabs[tab].realtime.subscribe(channel, { handlers: { happened: handler } });
}

/** The tab dies (closed by the user, crashed): its locks go, its channels close, its stream
 * ends, and it says nothing. */
function kill(tab) {
  dead.add(tab);
  for (const [, lock] of [...held]) if (lock.tab === tab) lock.release();
  for (const queue of waiting.values()) {
    for (const request of [...queue]) if (request.tab === tab) queue.splice(queue.indexOf(request), 1);
  }
  for (const channel of channelsOf.get(tab) ?? []) channel.close();
  for (const stream of [...streams]) {
    if (stream.tab === tab) stream.response.end(), streams.delete(stream);
  }
}

// ---- The server ----
const requests = []; // { tab, channels, last, status }
const streams = new Set(); // the open streams: { tab, channels, response }
const stored = []; // { id, channel }
let newest = 100;
for (let id = 1; id <= newest; id += 1) stored.push({ id, channel: "orders" });

const frame = ({ id, channel }) => `id: ${id}\nevent: ${channel}.happened\ndata: {}\n\n`;

const server = createServer((request, response) => {
  const url = new URL(request.url, "http://localhost");
  const channels = url.searchParams.get("channels").split(",");
  const last = url.searchParams.get("last_event_id");
  const tab = (request.headers.authorization ?? "").split("tok-")[1];
  const refused = channels.includes("legacy");
  requests.push({ tab, channels: channels.join(","), last, status: refused ? 400 : 200 });
  if (refused) return void response.writeHead(400).end('{"detail": "no channel legacy"}');
  const after = last === null ? newest : Number(last);
  response.writeHead(200, { "Content-Type": "text/event-stream" });
  response.write(`id: ${after}\nretry: 10\n\n`);
  for (const event of stored) if (event.id > after && channels.includes(event.channel)) response.write(frame(event));
  const stream = { tab, channels, response };
  streams.add(stream);
  request.on("close", () => streams.delete(stream));
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;

/** Commit an event of `channel`, sent to the open streams that read it. */
function emit(channel) {
  newest += 1;
  const event = { id: newest, channel };
  stored.push(event);
  for (const stream of streams) if (stream.channels.includes(channel)) stream.response.write(frame(event));
  return newest;
}

/** Wait until `condition()` holds; fail, saying `what`, if it does not within 10 s. */
async function until(what, condition) {
  const deadline = Date.now() + 10000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}: ${JSON.stringify(requests)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const opened = (tab) => () => tabs[tab].statuses.at(-1) === "open";
const requested = (count) => () => requests.length >= count;

// ---- Scenarios: each returns what the test checks ----
const scenarios = {
  /** Tabs without a share key each read alone, whatever the auth. */
  async withoutKey() {
    for (const tab of ["A", "B"]) {
      openTab(tab, { auth: { kind: "cookie" }, share: undefined });
      subscribe(tab, "orders");
    }
    await until("both open", () => opened("A")() && opened("B")());
    return { roles: [tabs.A.realtime.role, tabs.B.realtime.role], requests: requests.length };
  },

  /** The leader's tab dies before any event: the new leader resumes from where the stream
   * opened, and receives the events committed in between, once. */
  async takeoverBeforeAnyEvent() {
    openTab("A");
    subscribe("A", "orders");
    await until("A leads", opened("A"));
    openTab("B");
    subscribe("B", "orders");
    await until("B follows", opened("B"));
    kill("A");
    const gap = [emit("orders"), emit("orders")];
    await until("B took over", requested(2));
    const later = emit("orders");
    await until("B received the gap and after", () => tabs.B.received.length >= 3);
    return { requests, gap, later, received: tabs.B.received, role: tabs.B.realtime.role };
  },

  /** The page subscribes while the token is being refreshed after `expired`: one stream, of
   * the new set of channels, and no other once the refresh ends. */
  async subscribeWhileRenewing() {
    let refreshed;
    openTab("S", { share: false, refreshToken: () => new Promise((resolve) => (refreshed = resolve)) });
    subscribe("S", "orders");
    await until("S open", opened("S"));
    emit("orders"); // the stream worked: after the refresh, it would reconnect at once
    await until("S received it", () => tabs.S.received.length === 1);
    for (const stream of streams) stream.response.write('event: expired\ndata: {"reason": "token_expired"}\n\n');
    await until("refreshing", () => refreshed !== undefined);
    subscribe("S", "notices");
    await until("the new set is read", () => requested(2)() && opened("S")());
    refreshed();
    for (let turn = 0; turn < 3; turn += 1) await new Promise(setImmediate); // the refresh's continuation runs
    return { requests, held: signals.filter((signal) => !signal.aborted).length };
  },

  /** A stream revoked, with no new token: a tab that joins, or a channel subscribed to, opens
   * a new connection. */
  async joinAfterRevoked() {
    openTab("A");
    subscribe("A", "orders");
    await until("A leads", opened("A"));
    for (const stream of streams) stream.response.write('event: revoked\ndata: {"reason": "revoked"}\n\n');
    await until("A revoked", () => tabs.A.statuses.at(-1) === "revoked");
    openTab("B");
    subscribe("B", "orders");
    await until("a tab joined: a new connection", requested(2));
    await until("B follows it", opened("B"));
    for (const stream of streams) stream.response.write('event: revoked\ndata: {"reason": "revoked"}\n\n');
    await until("B revoked", () => tabs.B.statuses.at(-1) === "revoked");
    subscribe("A", "notices");
    await until("a new channel: a new connection", requested(3));
    return { requests, roles: [tabs.A.realtime.role, tabs.B.realtime.role] };
  },

  /** A tab names a channel the server refuses: the others go on without it, and it connects on
   * its own, to see its own refusal. */
  async refusedChannel() {
    openTab("A");
    subscribe("A", "orders");
    await until("A leads", opened("A"));
    openTab("B");
    subscribe("B", "legacy");
    await until("B reads alone", () => tabs.B.realtime.role === "alone");
    await until("A reconnected, B was refused", requested(4));
    await until("A open again", opened("A"));
    const id = emit("orders");
    await until("A received it", () => tabs.A.received.some(([, received]) => received === id));
    return { requests, role: tabs.B.realtime.role, statusesB: tabs.B.statuses, received: tabs.A.received };
  },

  /** A tab that dies without a word is forgotten: its channels leave the stream. */
  async deadTabForgotten() {
    openTab("A");
    subscribe("A", "orders");
    await until("A leads", opened("A"));
    openTab("F");
    subscribe("F", "rooms");
    await until("the stream reads F's channel", requested(2));
    kill("F");
    await until("the stream no longer reads it", requested(3));
    return { requests };
  },

  /** A tab joins while a new leader asks the browser which tabs are alive: the leader connects
   * once, when it knows them all, not also at once for the tab that joined. */
  async joinDuringTakeover() {
    openTab("A");
    subscribe("A", "orders");
    await until("A leads", opened("A"));
    openTab("B");
    subscribe("B", "orders");
    await until("B follows", opened("B"));
    let answer;
    queried = new Promise((resolve) => (answer = resolve));
    const heard = [];
    const bus = new BroadcastChannel(`fastapi-pg-sse ${base}/realtime/stream alice`);
    bus.onmessage = ({ data }) => heard.push(data);
    kill("A");
    await until("B asks which tabs are alive", () => tabs.B.realtime.role === "leader");
    openTab("C");
    subscribe("C", "notices");
    await until("C's need is out", () => heard.some((message) => message.kind === "need" && message.tab !== undefined && JSON.stringify(message.needs).includes("notices")));
    for (let turn = 0; turn < 3; turn += 1) await new Promise(setImmediate); // B has it too
    answer();
    await until("B connected", () => requests.some((request) => request.tab === "B"));
    await until("C follows", opened("C"));
    const id = emit("notices"); // by the time it is relayed, a second connection would be asked for
    await until("C received it", () => tabs.C.received.some(([, received]) => received === id));
    for (let turn = 0; turn < 3; turn += 1) await new Promise(setImmediate);
    bus.close();
    return { requests };
  },

  /** A tab without an id skips what the stream had before it joined, even when a tab joining
   * with an older id makes the stream replay it. */
  async lateTabs() {
    openTab("A", { lastEventId: 100 });
    subscribe("A", "orders");
    await until("A leads", opened("A"));
    openTab("C");
    subscribe("C", "orders");
    await until("C follows", opened("C"));
    openTab("D", { lastEventId: 95 });
    subscribe("D", "orders");
    await until("D received the replay", () => tabs.D.received.length >= 5);
    const id = emit("orders");
    await until("every tab received the new event", () =>
      ["A", "C", "D"].every((tab) => tabs[tab].received.some(([, received]) => received === id)),
    );
    return { requests, A: tabs.A.received, C: tabs.C.received, D: tabs.D.received };
  },
};

const result = await scenarios[process.argv[3]]();
console.log(JSON.stringify(result));
process.exit(0);
