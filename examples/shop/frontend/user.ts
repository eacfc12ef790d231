/**
 * One user's page of the demo: sign in, show the user's stock events as they arrive (newest on
 * top; the list holds them in order of arrival), and add to the user's basket. The query says
 * who and how:
 *   user      the user name (default alice)
 *   auth      how the stream is opened: "cookie" (an EventSource with the cookie, the default)
 *             or "header" (the token in an Authorization header, the client's fetch-based
 *             stream); the basket button always sends the token in the header, since the
 *             cookie authenticates stream routes only
 *   api       the origin that serves the stream, if not this page's (CORS must allow this page)
 *   lifetime  the token's lifetime in seconds: the stream ends with it, the client asks for a
 *             new token (the sign-in below) and resumes where it was
 */
import { openStream } from "./realtime/client.js";
import { inventoryStock } from "./realtime/channels.js";

const query = new URLSearchParams(location.search);
const user = query.get("user") ?? "alice";
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
let token = "";

/** Sign in on this page's origin: the token comes in the body, and as a cookie in cookie mode. */
async function signIn(): Promise<void> {
  const parameters = new URLSearchParams({ user, lifetime, cookie: String(auth === "cookie") });
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

element("user").textContent = user;
element("how").textContent =
  `This page: ${location.origin}, signed in with ` +
  `${auth === "cookie" ? "a cookie" : "an Authorization header"}. ` +
  (api && api !== location.origin ? `Its stream: ${api}, another origin (CORS).` : "");

await signIn();
const stream = openStream(inventoryStock, {
  baseUrl: api,
  auth: auth === "cookie" ? { kind: "cookie" } : { kind: "header", token: () => token },
  refreshToken: signIn,
  handlers: {
    stock_created: (row, meta) => show("stock_created", String(meta.id), basket(row)),
    stock_updated: (row, meta) => show("stock_updated", String(meta.id), basket(row)),
    stock_deleted: (row, meta) => show("stock_deleted", String(meta.id), basket(row)),
  },
  lastEventId: 0, // from the user's first event: a reload shows what happened before it
  backoff: { max: 5000 }, // a demo that restarts wants its pages back soon
  onReset: () => show("reset", "", "events were missed: a real page reloads its state here"),
  onStatus: (state) => {
    status.value = state;
    status.dataset.state = state;
    status.dataset.history = `${status.dataset.history ?? ""} ${state}`.trim();
    add.disabled = state !== "open";
  },
});
addEventListener("pagehide", () => stream.close());

add.addEventListener("click", async () => {
  const headers = { Authorization: `Bearer ${token}` };
  const response = await fetch("/demo/basket", { method: "POST", headers });
  if (!response.ok) console.error(`the basket route answered ${response.status}`);
});
