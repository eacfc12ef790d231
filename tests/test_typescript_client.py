"""The generated TypeScript client compiles with `tsc --strict`, types each handler's payload,
and behaves as documented against a real HTTP server.

It is checked as `golden/typescript-client` holds it; `test_golden.py` proves that is what the
generator writes. TypeScript comes from `scripts/_environment.sh` (in .tools/): without it these
tests fail, they do not skip.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.golden_cases import GOLDEN
from tests.helpers import REPO

TSC = REPO / ".tools" / "node_modules" / ".bin" / "tsc"
CLIENT = GOLDEN / "typescript-client" / "web" / "realtime"
FIXTURES = Path(__file__).parent / "typescript_fixtures"
STRICT = (
    "--strict",
    "--noUncheckedIndexedAccess",
    "--skipLibCheck",  # the DOM's declarations are TypeScript's to check, not ours
    "--target", "ES2022",
    "--module", "ES2022",
    "--lib", "ES2022,DOM",
)  # fmt: skip

USAGE = """\
import { openStream, type Stream } from "./client.js";
import { inventoryStock, warehouseOpsStockLevel } from "./channels.js";

const stream: Stream = openStream(inventoryStock, {
  baseUrl: "https://api.example.com",
  auth: { kind: "header", token: async () => "token" },
  refreshToken: async () => {},
  handlers: {
    stock_updated: (payload, meta) => {
      const sum: number = payload.id + meta.id;
      console.log(sum);
    },
  },
  onReset: (meta) => console.log(meta.id),
  onStatus: (status) => console.log(status),
  lastEventId: 41,
});
const resumeFrom: number | undefined = stream.lastEventId;
console.log(resumeFrom);
stream.close();

openStream(warehouseOpsStockLevel, {
  auth: { kind: "cookie" },
  handlers: {
    stock_level_deleted: (row) => console.log(row.id, row.user_id.toUpperCase(), row.stock),
  },
});
"""

USAGE_CONNECT = """\
import { connect, type Realtime, type Subscription } from "./client.js";
import { inventoryStock, warehouseOpsStockLevel } from "./channels.js";

const realtime: Realtime = connect({
  auth: { kind: "header", token: () => "token" },
  share: { key: "alice" },
  onReset: (meta) => console.log(meta.id, meta.channels.join()),
  onStatus: (status) => console.log(status, realtime.role),
});
const stock: Subscription = realtime.subscribe(inventoryStock, {
  handlers: { stock_updated: (payload, meta) => console.log(payload.id + meta.id) },
  onReset: (meta) => console.log(meta.id),
});
realtime.subscribe(warehouseOpsStockLevel, {
  handlers: { stock_level_created: (row) => console.log(row.user_id.toUpperCase()) },
});
stock.close();
const resumeFrom: number | undefined = realtime.lastEventId;
console.log(resumeFrom);
realtime.close();
"""

WRONG_FIELD = """\
import { openStream } from "./client.js";
import { inventoryStock } from "./channels.js";

openStream(inventoryStock, {
  auth: { kind: "cookie" },
  handlers: { stock_updated: (payload) => console.log(payload.sku) },
});
"""

WRONG_EVENT = """\
import { openStream } from "./client.js";
import { warehouseOpsStockLevel } from "./channels.js";

openStream(warehouseOpsStockLevel, {
  auth: { kind: "cookie" },
  handlers: { stock_updated: () => {} },
});
"""


WRONG_SUBSCRIPTION = """\
import { connect } from "./client.js";
import { inventoryStock } from "./channels.js";

connect({ auth: { kind: "cookie" } }).subscribe(inventoryStock, {
  handlers: { stock_updated: (payload) => console.log(payload.sku) },
});
"""


def tsc(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    if not TSC.is_file():
        pytest.fail(f"TypeScript is missing ({TSC}): run `source scripts/_environment.sh`")
    return subprocess.run(
        [str(TSC), *STRICT, *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def client_with(tmp_path: Path, usage: str, shared: str = USAGE_CONNECT) -> Path:
    """The generated client and channels, beside files that use them: `usage.ts` and
    `shared.ts` (by default `connect`, subscribed to both channels)."""
    shutil.copytree(CLIENT, tmp_path, dirs_exist_ok=True)
    (tmp_path / "usage.ts").write_text(usage)
    (tmp_path / "shared.ts").write_text(shared)
    return tmp_path


def test_generated_client_compiles_with_tsc_strict(tmp_path: Path) -> None:
    folder = client_with(tmp_path, USAGE)
    result = tsc(folder, "--noEmit", "client.ts", "channels.ts", "usage.ts", "shared.ts")
    assert result.returncode == 0, result.stdout + result.stderr


VITE_TSCONFIG = {
    # What `npm create vite@latest -- --template vanilla-ts` gives a new project (its current
    # tsconfig.json), compiled with the TypeScript in .tools (5.9); but `types`: the template's
    # ["vite/client"] names Vite's declarations, which a project has installed and this test
    # does not (Vite is not installed here), so none.
    "compilerOptions": {
        "target": "ES2023",
        "module": "ESNext",
        "lib": ["ES2023", "DOM"],
        "types": [],
        "skipLibCheck": True,
        "moduleResolution": "bundler",
        "allowImportingTsExtensions": True,
        "verbatimModuleSyntax": True,
        "moduleDetection": "force",
        "noEmit": True,
        "strict": True,
        "noUnusedLocals": True,
        "noUnusedParameters": True,
        "erasableSyntaxOnly": True,
        "noFallthroughCasesInSwitch": True,
        "noUncheckedSideEffectImports": True,
    },
    "include": ["src"],
}


def test_generated_client_compiles_under_the_tsconfig_of_vites_typescript_template(
    tmp_path: Path,
) -> None:
    """`erasableSyntaxOnly` (no parameter properties, enums or namespaces: what Node.js and
    esbuild strip), `verbatimModuleSyntax` (type imports say so) and the unused-code checks."""
    client_with(tmp_path / "src", USAGE)
    (tmp_path / "tsconfig.json").write_text(json.dumps(VITE_TSCONFIG))
    if not TSC.is_file():
        pytest.fail(f"TypeScript is missing ({TSC}): run `source scripts/_environment.sh`")
    result = subprocess.run(
        [str(TSC), "--project", "."], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("usage", "error"),
    [
        (WRONG_FIELD, "Property 'sku' does not exist on type 'StockUpdated'."),
        (
            WRONG_EVENT,
            "'stock_updated' does not exist in type 'Handlers<WarehouseOpsStockLevelEvents>'",
        ),
        (WRONG_SUBSCRIPTION, "Property 'sku' does not exist on type 'StockUpdated'."),
    ],
    ids=["field-the-payload-lacks", "event-the-channel-lacks", "field-a-subscription-lacks"],
)
def test_a_handler_that_misuses_its_event_does_not_compile(
    usage: str, error: str, tmp_path: Path
) -> None:
    folder = client_with(tmp_path, usage)
    result = tsc(folder, "--noEmit", "client.ts", "channels.ts", "usage.ts")
    assert result.returncode != 0
    assert error in result.stdout


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.channels.ts")))
def test_every_mapped_annotation_is_valid_typescript(fixture: str, tmp_path: Path) -> None:
    shutil.copy(CLIENT / "client.ts", tmp_path / "client.ts")
    shutil.copy(FIXTURES / fixture, tmp_path / "channels.ts")
    result = tsc(tmp_path, "--noEmit", "client.ts", "channels.ts")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def compiled_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated client.ts compiled to client.js, an ES module Node.js can import."""
    folder = tmp_path_factory.mktemp("client")
    result = tsc(CLIENT, "--outDir", str(folder), "client.ts")
    assert result.returncode == 0, result.stdout + result.stderr
    (folder / "package.json").write_text('{"type": "module"}\n')
    return folder


def run_node(script: str, client: Path, stdin: str = "", *arguments: str) -> Any:
    """What the fixture script prints, as JSON."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is missing: the client's behaviour is tested with it")
    result = subprocess.run(
        [node, str(FIXTURES / script), str(client), *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_header_auth_sends_the_scheme_word_the_server_names(compiled_client: Path) -> None:
    """A server with REALTIME_AUTH_SCHEME=Token reads `Authorization: Token <jwt>`."""
    record = run_node("client_scenario.mjs", compiled_client, "", "Token")
    assert {request["authorization"].split()[0] for request in record["requests"]} == {"Token"}


def test_client_resumes_renews_and_never_delivers_an_event_twice(compiled_client: Path) -> None:
    """client_scenario.mjs plays a stream's life on a loopback server: a 401, events with CRLF
    and CR endings, a dropped connection, a replayed id, `expired`, a `reset` to an older id,
    and close()."""
    record = run_node("client_scenario.mjs", compiled_client)
    stream = "/inventory/events/stock/stream"
    assert record["requests"] == [
        {"url": stream, "authorization": "Bearer t1"},
        {"url": stream, "authorization": "Bearer t2"},
        {"url": f"{stream}?last_event_id=2", "authorization": "Bearer t2"},
        {"url": f"{stream}?last_event_id=3", "authorization": "Bearer t3"},
    ]
    assert record["delivered"] == [
        {"id": 1, "payload": {"id": 1}},
        {"id": 2, "payload": {"id": 2}},
        {"id": 3, "payload": {"id": 3}},
        {"id": 2, "payload": {"id": 20}},
    ]
    assert record["resets"] == [1]
    assert record["refreshes"] == 2
    assert record["statuses"] == [
        *("connecting", "error"),  # 401: renew, retry
        *("connecting", "open", "error"),  # the network fails
        *("connecting", "open", "expired"),  # the token expires: renew, resume
        *("connecting", "open", "closed"),
    ]
    assert record["lastEventId"] == 2


SSE_CASES: dict[str, tuple[list[bytes], list[list[Any]]]] = {
    "split-mid-line": (
        [b"event: stock_upd", b'ated\ndata: {"id"', b": 1}\nid: 7\n", b"\n"],
        [["event", "stock_updated", '{"id": 1}', "7"]],
    ),
    "crlf-split-across-chunks": (
        [b"data: a\r", b"\ndata: b\r\n\r", b"\n", b"data: c\r\n\r\n"],
        [["event", "message", "a\nb", None], ["event", "message", "c", None]],
    ),
    "cr-endings": ([b"data: a\rdata: b\r\r"], [["event", "message", "a\nb", None]]),
    "utf8-character-split-across-chunks": (
        [b"data: caf\xc3", b"\xa9 \xe2\x82", b"\xac \xf0\x9f", b"\x98\x80\n\n"],
        [["event", "message", "caf\u00e9 \u20ac \U0001f600", None]],
    ),
    "byte-order-mark": ([b"\xef\xbb", b"\xbfdata: z\n\n"], [["event", "message", "z", None]]),
    "multi-line-data": (
        [b"data: first\ndata:second\ndata:  third\ndata\n\n"],
        [["event", "message", "first\nsecond\n third\n", None]],
    ),
    "comment-and-retry": (
        [b": keep-alive\n", b"retry: 2500\nretry: soon\n\n:\n\n"],
        [["comment", "keep-alive"], ["retry", 2500], ["comment", ""]],
    ),
    "id-without-data-is-a-position": (
        [b"id: 100\nretry: 10\n\n", b": keep-alive\n\nid: 101\nevent: a\ndata: x\n\n"],
        [["retry", 10], ["position", "100"], ["comment", "keep-alive"], ["event", "a", "x", "101"]],
    ),
    "id-holds-and-type-resets": (
        [b"id: 5\nevent: a\ndata: x\n\ndata: y\n\nid: 6\0\nevent: b\n\ndata: z\n\n"],
        [["event", "a", "x", "5"], ["event", "message", "y", "5"], ["event", "message", "z", "5"]],
    ),
}


def test_sse_parser_reads_events_however_the_bytes_are_split(compiled_client: Path) -> None:
    """Fixed chunks, fed straight to the parser: no transport can merge or split them."""
    cases = {name: [list(chunk) for chunk in chunks] for name, (chunks, _) in SSE_CASES.items()}
    found = run_node("sse_parser_cases.mjs", compiled_client, json.dumps(cases))
    assert found == {name: expected for name, (_, expected) in SSE_CASES.items()}


def test_reconnections_back_off_until_a_connection_delivers_something(
    compiled_client: Path,
) -> None:
    """Streams that open and end at once: the delay's ceiling doubles until one delivers a
    heartbeat; a stream that expires before delivering anything backs off too, and one that
    expires after an event reconnects at once. Each delay is half its ceiling (see
    client_backoff.mjs)."""
    record = run_node("client_backoff.mjs", compiled_client)
    stream = "/inventory/events/stock/stream"
    assert record["requests"] == [stream] * 5 + [f"{stream}?last_event_id=1"]
    assert record["delays"] == [
        5,  # "retry: 10" then the end: the ceiling is 10
        10,  # an empty stream: 20
        5,  # a heartbeat, then the end: the connection worked, 10 again
        10,  # expired at once: 20
    ]  # an event, then expired: the connection worked, it reconnects at once


def test_a_revoked_stream_reconnects_only_with_a_new_token(compiled_client: Path) -> None:
    """client_revoked.mjs: `revoked` twice. The first time refreshToken gives a new token and
    the stream resumes with it; the second time the token is the same, and it stops."""
    record = run_node("client_revoked.mjs", compiled_client)
    stream = "/inventory/events/stock/stream"
    assert record["requests"] == [
        {"url": stream, "authorization": "Bearer t1"},
        {"url": f"{stream}?last_event_id=1", "authorization": "Bearer t2"},
    ]
    assert [event["id"] for event in record["delivered"]] == [1, 2]
    assert record["refreshes"] == 2
    assert record["statuses"] == [
        *("connecting", "open", "revoked"),  # a new token: resume with it
        *("connecting", "open", "revoked"),  # the same token: stop
    ]
    assert record["lastEventId"] == 2


def test_connect_reads_its_channels_over_one_stream_and_reconnects_with_the_new_set(
    compiled_client: Path,
) -> None:
    """client_multiplexed.mjs, in Node.js (no Web Locks: a connection of its own, as in a browser
    without them): two channels subscribed together open one stream; unsubscribing one reconnects
    with the other, from the last id; a `reset` reaches the subscriptions of the channels it
    names."""
    record = run_node("client_multiplexed.mjs", compiled_client)
    assert record["role"] == "alone"
    assert record["requests"] == [
        {"url": "/realtime/stream?channels=notices,stock", "authorization": "Bearer t1"},
        {"url": "/realtime/stream?channels=stock&last_event_id=3", "authorization": "Bearer t1"},
    ]
    assert record["delivered"] == [
        ["stock", "updated", 1, 1],
        ["notices", "posted", 2, 2],
        ["stock", "updated", 5, 5],
    ]
    assert record["resets"] == [[4, ["stock"]]]
    assert record["channelResets"] == [["stock", 4]]
    assert record["lastEventId"] == 5


def shared_tabs(compiled_client: Path, scenario: str) -> Any:
    """What a scenario of shared_tabs.mjs gives: tabs of one browser in one Node.js process,
    with a fake Web Locks API, against a loopback server whose streams open with their
    position (see the script)."""
    return run_node("shared_tabs.mjs", compiled_client, "", scenario)


def test_tabs_share_a_stream_only_given_a_key(compiled_client: Path) -> None:
    """Cookie auth too: a tab of another user, signed in after a sign-out, must not follow the
    first user's stream, and only the page knows who is signed in."""
    record = shared_tabs(compiled_client, "withoutKey")
    assert record == {"roles": ["alone", "alone"], "requests": 2}


def test_a_takeover_before_any_event_resumes_from_where_the_stream_opened(
    compiled_client: Path,
) -> None:
    """The stream's first frame (`id: 100`, no event) is the tabs' position: the new leader
    resumes after it, and the events committed while no tab held the stream arrive once."""
    record = shared_tabs(compiled_client, "takeoverBeforeAnyEvent")
    assert [(r["tab"], r["last"]) for r in record["requests"]] == [("A", None), ("B", "100")]
    assert record["received"] == [["orders", id_] for id_ in [*record["gap"], record["later"]]]
    assert record["role"] == "leader"


def test_subscribing_while_the_token_is_refreshed_leaves_one_stream(
    compiled_client: Path,
) -> None:
    record = shared_tabs(compiled_client, "subscribeWhileRenewing")
    assert [r["channels"] for r in record["requests"]] == ["orders", "notices,orders"]
    assert record["held"] == 1


def test_a_tab_joining_during_a_takeover_does_not_make_the_new_leader_connect_twice(
    compiled_client: Path,
) -> None:
    record = shared_tabs(compiled_client, "joinDuringTakeover")
    assert [(r["tab"], r["channels"]) for r in record["requests"]] == [
        ("A", "orders"),
        ("B", "notices,orders"),
    ]


def test_a_revoked_stream_reconnects_when_a_tab_joins_or_a_channel_is_added(
    compiled_client: Path,
) -> None:
    """Revoked without a new token, the leader's connection stops; a new tab (a new sign-in)
    or a new subscription tries again, rather than leaving every tab without a stream."""
    record = shared_tabs(compiled_client, "joinAfterRevoked")
    assert [r["channels"] for r in record["requests"]] == ["orders", "orders", "notices,orders"]
    assert record["roles"] == ["leader", "follower"]


def test_a_channel_the_server_refuses_sends_only_the_tabs_naming_it_to_their_own_stream(
    compiled_client: Path,
) -> None:
    """A tab of an older page names a channel the server no longer serves (400): the leader
    goes on with its own channels, and that tab connects alone and sees its own refusal."""
    record = shared_tabs(compiled_client, "refusedChannel")
    requests = [(r["tab"], r["channels"], r["status"]) for r in record["requests"]]
    assert requests[:2] == [("A", "orders", 200), ("A", "legacy,orders", 400)]
    assert sorted(requests[2:]) == [("A", "orders", 200), ("B", "legacy", 400)]  # either first
    assert record["role"] == "alone"
    assert "error" in record["statusesB"]
    assert record["received"] == [["orders", 101]]


def test_a_tab_that_dies_without_a_word_leaves_the_stream(compiled_client: Path) -> None:
    """No `bye` (a crash, a discarded tab): the leader learns it from the tab's lock, which
    the browser grants it once the tab is gone, and drops the tab's channels."""
    record = shared_tabs(compiled_client, "deadTabForgotten")
    assert [r["channels"] for r in record["requests"]] == ["orders", "orders,rooms", "orders"]


def test_a_tab_without_an_id_skips_what_the_stream_had_before_it_joined(
    compiled_client: Path,
) -> None:
    """A, then C (no id), then D with an older id (95): the stream resumes from 95 for D; A
    and C skip the replay, C never sees an event from before it opened."""
    record = shared_tabs(compiled_client, "lateTabs")
    assert [r["last"] for r in record["requests"]] == ["100", "95"]
    assert record["A"] == record["C"] == [["orders", 101]]
    assert record["D"] == [["orders", id_] for id_ in range(96, 102)]
