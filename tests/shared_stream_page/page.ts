// A tab of test_browser_shared_stream.py: the three channels over the generated client's
// connect(), everything it receives kept on `window` for the test to read. Cookie auth, or with
// `?token=<jwt>` header auth; `?key=<share key>` (the user's id) shares among the tabs of that key.
import { connect, type Channel, type Handlers, type Status } from "./client.js";

interface Received {
  readonly channel: string;
  readonly type: string;
  readonly id: number;
  readonly n: number;
}

interface Payload {
  readonly n: number;
}

const CHANNELS: Channel<Record<string, Payload>>[] = [
  { name: "shared_orders", path: "/orders/stream", events: ["order_placed"] },
  { name: "shared_notices", path: "/notices/stream", events: ["notice_posted"] },
  { name: "shared_prices", path: "/prices/stream", events: ["price_changed"] },
];

const received: Received[] = [];
const statuses: Status[] = [];
const query = new URLSearchParams(location.search);
const token = query.get("token");
const key = query.get("key");
const realtime = connect({
  auth: token === null ? { kind: "cookie" } : { kind: "header", token: () => token },
  share: key === null ? false : { key },
  onStatus: (status) => statuses.push(status),
  backoff: { initial: 200, max: 2000 },
});
for (const channel of CHANNELS) {
  const handlers: Handlers<Record<string, Payload>> = Object.fromEntries(
    channel.events.map((type) => [
      type,
      (payload: Payload, meta: { id: number }) =>
        received.push({ channel: channel.name, type, id: meta.id, n: payload.n }),
    ]),
  );
  realtime.subscribe(channel, { handlers });
}
Object.assign(window, { received, statuses, realtime });
