/**
 * One user's page of the demo: sign in, show the user's stock events and their team's notices
 * as they arrive (newest on top; the list holds them in order of arrival), add to the user's
 * basket, and post a notice to the user's team. Both channels come over one stream, shared by
 * the user's tabs of this browser (`connect`). The query says who and how:
 *   user      the user name (default alice)
 *   team      the user's team (default: a team of their own): a notice reaches every member
 *   auth      how the stream authenticates: "cookie" (the default: the client's fetch sends the
 *             cookie) or "header" (the token in an Authorization header); the buttons always
 *             send the token in the header, since the cookie authenticates the stream route
 *             only
 *   api       the origin that serves the stream, if not this page's (CORS must allow this page)
 *   lifetime  the token's lifetime in seconds: the stream ends with it, the client asks for a
 *             new token (the sign-in below) and resumes where it was
 */
import { connect } from "./realtime/client.js";
import { inventoryStock, teamsNotice } from "./realtime/channels.js";

const query = new URLSearchParams(location.search);
const user = query.get("user") ?? "alice";
const team = query.get("team") ?? `${user}-team`;
const auth = query.get("auth") === "header" ? "header" : "cookie";
const api = query.get("api") ?? "";
const lifetime = query.get("lifetime") ?? "600";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

const status = element<HTMLOutputElement>("status");
const events = element<HTMLUListElement>("events");
const add = element<HTMLButtonElement>("add");
const notice = element<HTMLButtonElement>("notice");
let token = "";

/** Sign in on this page's origin: the token comes in the body, and as a cookie in cookie mode. */
async function signIn(): Promise<void> {
  const parameters = new URLSearchParams({ user, team, lifetime, cookie: String(auth === "cookie") });
  const response = await fetch(`/demo/sign-in?${parameters}`, { method: "POST" });
  if (!response.ok) throw new Error(`the sign-in answered ${response.status}`);
  token = ((await response.json()) as { access_token: string }).access_token;
}

function show(type: string, id: string, text: string): void {
  const item = document.createElement("li");
  item.dataset.id = id;
  item.dataset.type = type;
  item.textContent = `#${id} ${type}: ${text}`;
  events.append(item);
}

function basket(row: { id: number; stock: number }): string {
  return `basket ${row.id}, stock ${row.stock}`;
}

element("user").textContent = `${user}, of team ${team}`;
element("how").textContent =
  `This page: ${location.origin}, signed in with ` +
  `${auth === "cookie" ? "a cookie" : "an Authorization header"}. ` +
  (api && api !== location.origin ? `Its stream: ${api}, another origin (CORS).` : "");

await signIn();
const realtime = connect({
  baseUrl: api,
  auth: auth === "cookie" ? { kind: "cookie" } : { kind: "header", token: () => token },
  // The user's tabs share one stream; another user signed in in this browser gets another.
  share: { key: user },
  refreshToken: signIn,
  lastEventId: 0, // from the user's first event: a reload shows what happened before it
  backoff: { max: 5000 }, // a demo that restarts wants its pages back soon
  onReset: () => show("reset", "", "events were missed: a real page reloads its state here"),
  onStatus: (state) => {
    status.value = state;
    status.dataset.state = state;
    status.dataset.history = `${status.dataset.history ?? ""} ${state}`.trim();
    add.disabled = notice.disabled = state !== "open";
  },
});
realtime.subscribe(inventoryStock, {
  handlers: {
    stock_created: (row, meta) => show("stock_created", String(meta.id), basket(row)),
    stock_updated: (row, meta) => show("stock_updated", String(meta.id), basket(row)),
    stock_deleted: (row, meta) => show("stock_deleted", String(meta.id), basket(row)),
  },
});
realtime.subscribe(teamsNotice, {
  handlers: {
    notice_created: (row, meta) => show("notice_created", String(meta.id), `team ${row.team_id}: ${row.body}`),
  },
});
addEventListener("pagehide", () => realtime.close());

/** Call a demo route with the token in the header. */
async function post(path: string): Promise<void> {
  const headers = { Authorization: `Bearer ${token}` };
  const response = await fetch(path, { method: "POST", headers });
  if (!response.ok) console.error(`${path} answered ${response.status}`);
}

add.addEventListener("click", () => void post("/demo/basket"));
notice.addEventListener("click", () => void post("/demo/notice"));
