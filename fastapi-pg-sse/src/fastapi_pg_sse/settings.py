"""Settings of the real-time kernel, read once from the environment when the app starts.

Every variable is `REALTIME_<FIELD>` (`REALTIME_JWT_SECRET`, `REALTIME_HEARTBEAT_SECONDS`, ...),
but the database, which is the `DATABASE_URL` every service already has. Secrets are
`SecretStr`: no repr, log line or traceback shows them.
"""

import importlib.util
import re
from typing import Annotated, Literal, Self

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_PUBLIC_KEY_PREFIXES = ("RS", "PS", "ES", "Ed")
_HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
"""The shortest secret each HMAC algorithm may use: its hash's size (RFC 7518 §3.2)."""
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#*\s]+")
"""What a browser sends as `Origin`: a scheme and a host, perhaps a port."""
_AUTH_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An authentication scheme's name (RFC 9110 §11.1): a `token` (§5.6.2), one word."""


_SHARED_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti"})
"""The registered claims that are no user id: `sub` is the one that names a subject."""


class TokenFormat(BaseSettings):
    """What a client's token and `Authorization` header look like: the part of the settings
    that whoever signs tokens and sends requests must follow, the test helpers too
    (`fastapi_pg_sse.testing`), read from the same variables."""

    model_config = SettingsConfigDict(
        env_prefix="REALTIME_",
        frozen=True,
        extra="ignore",
        use_attribute_docstrings=True,
        hide_input_in_errors=True,  # the input holds the secrets
    )

    jwt_user_claim: str = "sub"
    """The claim that holds the user id, required in every token: a non-empty string, or an
    integer (its decimal digits are the id)."""
    jwt_groups_claim: str = "groups"
    """The claim that holds the user's groups, whose events the user's streams carry too: a
    list of group names (absent: none; anything else refuses the token). When the app gives
    `create_realtime_router` a `groups` function, that function says the groups: a list of
    names in the claim is then in `user.groups` for it to use or ignore, and anything else is no
    group, refusing no token."""
    auth_scheme: str = "Bearer"
    """The scheme word of the `Authorization` header (`Authorization: Bearer <JWT>`), compared
    case-insensitively (RFC 9110 §11.1); also the scheme of the 401's `WWW-Authenticate`
    challenge."""

    @field_validator("jwt_groups_claim")
    @classmethod
    def _a_groups_claim_name(cls, claim: str) -> str:
        if not claim or claim != claim.strip():
            raise ValueError(
                "REALTIME_JWT_GROUPS_CLAIM must name the claim that holds the user's groups, such"
                " as groups, without spaces around it"
            )
        return claim

    @field_validator("jwt_user_claim")
    @classmethod
    def _a_claim_name(cls, claim: str) -> str:
        if not claim or claim != claim.strip():
            raise ValueError(
                "REALTIME_JWT_USER_CLAIM must name the claim that holds the user id, such as sub"
                " or user_id, without spaces around it"
            )
        if claim in _SHARED_CLAIMS:
            raise ValueError(
                f"REALTIME_JWT_USER_CLAIM is {claim}, a claim that every user's tokens share the"
                " same way (RFC 7519): name the claim that holds the user id, such as sub or"
                " user_id"
            )
        return claim

    @field_validator("auth_scheme")
    @classmethod
    def _one_word(cls, scheme: str) -> str:
        if not _AUTH_SCHEME.fullmatch(scheme):
            raise ValueError(
                "REALTIME_AUTH_SCHEME must be the one word clients put before the token in the"
                " Authorization header, such as Bearer or Token: no spaces, letters, digits and"
                " !#$%&'*+-.^_`|~ only (RFC 9110 §5.6.2)"
            )
        return scheme

    @property
    def uses_bearer_scheme(self) -> bool:
        """Whether the scheme word is `Bearer` (RFC 6750), in any case."""
        return self.auth_scheme.lower() == "bearer"


class TokenSources(TokenFormat):
    """Where stream routes read a token: the token format, and whether the query string may
    carry it; read on its own by what documents the routes (`fastapi_pg_sse.asyncapi`), which
    needs no database."""

    query_token: bool = False
    """Also read the token from the `access_token` query parameter of stream routes (query
    strings end up in logs: the kernel redacts that parameter from uvicorn's access log)."""


class RealtimeSettings(TokenSources):
    """What a process needs to serve real-time streams; see the README for the table."""

    database_url: SecretStr = Field(
        validation_alias=AliasChoices("REALTIME_DATABASE_URL", "DATABASE_URL", "database_url")
    )
    """The PostgreSQL server of the events tables: `REALTIME_DATABASE_URL`, else `DATABASE_URL`.

    LISTEN needs a session: point it past a transaction-pooling PgBouncer."""

    jwt_secret: SecretStr | None = None
    """Key of HMAC algorithms (HS256, HS384, HS512): at least as many bytes (UTF-8) as their hash
    (32, 48, 64), or the settings are refused."""
    jwt_public_key: SecretStr | None = None
    """PEM key of public-key algorithms (RS*, PS*, ES*, EdDSA)."""
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = ("HS256",)
    """Accepted algorithms, comma-separated in the environment; `none` is refused."""
    jwt_audience: str | None = None
    """When set, tokens must carry this `aud`."""
    jwt_issuer: str | None = None
    """When set, tokens must carry this `iss`."""
    jwt_type: str | None = None
    """When set, tokens must carry this `typ` header (such as `at+jwt`, RFC 9068's access
    tokens), so that tokens minted for something else (refresh, password reset) are refused."""
    jwt_max_lifetime_seconds: int = Field(24 * 3600, gt=0)
    """Tokens valid for longer than this (from `iat`, or from now without one) are refused."""

    heartbeat_seconds: float = Field(15.0, gt=0)
    """No stream stays silent longer: a `: keep-alive` comment goes to one idle this long (keep it
    below proxies' idle timeouts)."""
    retry_milliseconds: int = Field(3000, gt=0)
    """The `retry:` hint: how long a browser waits before it reconnects."""
    max_queued_bytes: int = Field(4 * 1024 * 1024, gt=0)
    """Per stream: a client further behind than this is disconnected and recovers by replay.

    Also the most payload a page of replay, or a read of the listener, holds."""
    write_timeout_seconds: float = Field(30.0, gt=0)
    """A client that takes longer than this to accept one write (a page of replay, the live
    events queued for it, a heartbeat) has stopped reading: its stream is cut off."""
    max_streams: int = Field(10_000, gt=0)
    """Streams this process serves at once; the next one gets 429 with `Retry-After`."""
    max_streams_per_user: int = Field(10, gt=0)
    """Streams one user may hold open in this process, over every channel; the next one gets
    429 with `Retry-After`."""
    max_groups_per_stream: int = Field(256, gt=0)
    """The most groups a stream reads: each costs memory per open stream and an index range per
    page of replay. A user in more is the app's fault, answered 500 and logged."""
    stalled_client_grace_seconds: float = Field(1.0, gt=0)
    """How long a stream the server ended may take to flush before its connection is cut."""
    replay_page_size: int = Field(1000, gt=0)
    """Events read from the table per query, by replay and by the listener."""
    keepalive_seconds: float = Field(10.0, gt=0)
    """The listener checks its connection with a query after this long without notifications, and
    gives up on any of its queries after this long."""
    read_mode: Literal["notify", "poll"] = "notify"
    """How the listener learns of new events: `notify` (LISTEN, woken by each commit's
    notification), or `poll` (no LISTEN: every `poll_interval_seconds` it numbers the events of
    poll-delivery sessions, `fastapi_pg_sse.sequence_queued`, and reads on), which needs no
    notifying commit and can read from a replica (`read_database_url`)."""
    poll_interval_seconds: float = Field(0.02, ge=0.001, le=60)
    """In `poll` read mode, the pause between two polls: the bound of the wait from commit to
    delivery, for two queries a poll. From 1 ms (below, the listener would keep the database
    busy polling) to 60 s (beyond, events would arrive a minute late)."""
    read_database_url: SecretStr | None = None
    """In `poll` read mode, the database streams read from (the listener's reads, streams'
    opening, replay and revocation checks), such as a streaming replica of `database_url`;
    unset: `database_url`."""
    reconnect_max_backoff_seconds: float = Field(30.0, gt=0)
    """Cap of the listener's jittered exponential backoff between reconnection attempts."""
    pool_min_size: int = Field(0, ge=0)
    """Connections the stream pool keeps open. Above 0, asyncpg logs a traceback for each failed
    attempt to restore them while the database is down."""
    pool_max_size: int = Field(4, gt=0)
    """Connections the stream pool opens at most (a stream holds one only while it opens or
    reads a page of replay)."""
    pool_timeout_seconds: float = Field(10.0, gt=0)
    """How long a stream waits for a pooled connection, or for a query; opening one then ends
    at once, for the client to reconnect after the retry hint."""
    gc_freeze_at_start: bool = True
    """Hide every object alive when the kernel starts (the app's modules, mostly) from Python's
    cyclic garbage collector (`gc.freeze()`), so that its full passes scan only what came
    later."""
    gc_threshold: int = Field(50_000, gt=0)
    """Set when the kernel starts as the collector's first threshold (`gc.set_threshold`): how
    many more container objects may be alive than at its last pass before it runs again. Python's
    700 runs it hundreds of times a second under fan-out, each pass promoting the objects that
    were merely in flight towards the costly full passes; 700 restores Python's behaviour."""
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Origins of the pages allowed to open streams from a browser, with their cookies or an
    `Authorization` header (`RealtimeCORSMiddleware`), comma-separated in the environment, such
    as `https://app.example.com`; none by default."""
    prometheus: bool = False
    """Count deliveries per channel and expose them, with the listener's state, in
    prometheus-client's default registry (`fastapi_pg_sse.prometheus`; the `prometheus`
    extra)."""

    @model_validator(mode="before")
    @classmethod
    def _a_database(cls, data: object) -> object:
        names = {str(name).lower() for name in data} if isinstance(data, dict) else set()
        if not names & {"database_url", "realtime_database_url"}:
            raise ValueError("DATABASE_URL (or REALTIME_DATABASE_URL) must be set")
        return data

    @field_validator("jwt_algorithms", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _real_algorithms(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        if not algorithms or any(name.lower() == "none" for name in algorithms):
            raise ValueError("must name real algorithms; 'none' is refused")
        if len({name.startswith(_PUBLIC_KEY_PREFIXES) for name in algorithms}) > 1:
            raise ValueError("must not mix HMAC and public-key algorithms")
        return algorithms

    @model_validator(mode="after")
    def _a_long_enough_secret(self) -> Self:
        """A short HMAC secret can be brute-forced from one token, which then forges any."""
        if self.uses_public_key or self.jwt_key is None:
            return self
        minimum, name = max(
            (_HMAC_KEY_BYTES.get(algorithm, 32), algorithm) for algorithm in self.jwt_algorithms
        )
        if len(self.jwt_key.get_secret_value().encode()) < minimum:
            raise ValueError(
                f"REALTIME_JWT_SECRET must be at least {minimum} bytes (UTF-8) to verify {name}"
                " tokens (RFC 7518 §3.2); generate one with secrets.token_urlsafe(64)"
            )
        return self

    @field_validator("cors_origins")
    @classmethod
    def _real_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin such as https://app.example.com (a scheme and"
                    " a host, perhaps a port; no path, no wildcard: credentials are allowed)"
                )
        return origins

    @field_validator("prometheus")
    @classmethod
    def _prometheus_client_installed(cls, enabled: bool) -> bool:
        if enabled and importlib.util.find_spec("prometheus_client") is None:
            raise ValueError(
                "REALTIME_PROMETHEUS is true, but prometheus-client is not installed: install"
                " fastapi-pg-sse[prometheus]"
            )
        return enabled

    @model_validator(mode="after")
    def _a_read_database_only_when_polling(self) -> Self:
        """LISTEN does not work on a replica: only a polling listener can read from one."""
        if self.read_database_url is not None and self.read_mode != "poll":
            raise ValueError(
                "REALTIME_READ_DATABASE_URL needs REALTIME_READ_MODE=poll: a notify listener"
                " LISTENs, which a replica cannot serve"
            )
        return self

    @field_validator("pool_max_size")
    @classmethod
    def _not_below_the_minimum(cls, maximum: int, info: ValidationInfo) -> int:
        # A field validator, not a model one: its errors carry this value, not every setting.
        if info.data.get("pool_min_size", 0) > maximum:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        return maximum

    @property
    def uses_public_key(self) -> bool:
        return self.jwt_algorithms[0].startswith(_PUBLIC_KEY_PREFIXES)

    @property
    def jwt_key(self) -> SecretStr | None:
        """The key that verifies tokens of `jwt_algorithms`; None if it is not set (or blank).

        Only apps whose routes authenticate with `CurrentUser` need one: they refuse to start
        without it (see `missing_jwt_key`)."""
        key = self.jwt_public_key if self.uses_public_key else self.jwt_secret
        return key if key is not None and key.get_secret_value().strip() else None

    def missing_jwt_key(self) -> str | None:
        """What to set so that JWTs can be verified, or None when the key is there."""
        if self.jwt_key is not None:
            return None
        variable = "REALTIME_JWT_PUBLIC_KEY" if self.uses_public_key else "REALTIME_JWT_SECRET"
        return f"{variable} must be set to verify {self.jwt_algorithms[0]} tokens"
