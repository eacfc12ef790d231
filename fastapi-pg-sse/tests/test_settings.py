"""Settings come from `REALTIME_*` variables and `DATABASE_URL`, are checked when the app starts,
and never show their secrets."""

import os
from collections.abc import Callable, Iterator

import pytest
from pydantic import ValidationError

from fastapi_pg_sse import RealtimeSettings
from fastapi_pg_sse.testing import ServerFactory
from tests.helpers import failed_start_up

DATABASE_PASSWORD = "database-password-7f3a"
DATABASE_URL = f"postgresql://realtime:{DATABASE_PASSWORD}@db.example:5432/shop"
REPLICA_URL = f"postgresql://realtime:{DATABASE_PASSWORD}@replica.example:5432/shop"
JWT_SECRET = "jwt-secret-of-the-settings-tests-9c1e-long-enough-to-verify-hs512-tokens"
"""64 bytes or more: long enough for every HMAC algorithm."""

Settings = Callable[..., RealtimeSettings]
"""Settings read from exactly the given environment variables."""


@pytest.fixture
def settings_from(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in list(os.environ):
        if name.upper().startswith("REALTIME_") or name.upper() == "DATABASE_URL":
            monkeypatch.delenv(name)

    def read(**variables: str) -> RealtimeSettings:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return RealtimeSettings()  # type: ignore[call-arg]

    yield read


def _required(**variables: str) -> dict[str, str]:
    return {"DATABASE_URL": DATABASE_URL, "REALTIME_JWT_SECRET": JWT_SECRET, **variables}


def test_every_setting_is_read_from_its_realtime_prefixed_variable(
    settings_from: Settings,
) -> None:
    expected = {
        "database_url": ("REALTIME_DATABASE_URL", DATABASE_URL, DATABASE_URL),
        "jwt_secret": ("REALTIME_JWT_SECRET", JWT_SECRET, JWT_SECRET),
        "jwt_public_key": ("REALTIME_JWT_PUBLIC_KEY", "unused-pem", "unused-pem"),
        "jwt_algorithms": ("REALTIME_JWT_ALGORITHMS", "HS384", ("HS384",)),
        "jwt_audience": ("REALTIME_JWT_AUDIENCE", "shop", "shop"),
        "jwt_issuer": ("REALTIME_JWT_ISSUER", "https://auth.example", "https://auth.example"),
        "jwt_type": ("REALTIME_JWT_TYPE", "at+jwt", "at+jwt"),
        "jwt_max_lifetime_seconds": ("REALTIME_JWT_MAX_LIFETIME_SECONDS", "600", 600),
        "jwt_user_claim": ("REALTIME_JWT_USER_CLAIM", "user_id", "user_id"),
        "jwt_groups_claim": ("REALTIME_JWT_GROUPS_CLAIM", "teams", "teams"),
        "auth_scheme": ("REALTIME_AUTH_SCHEME", "Token", "Token"),
        "query_token": ("REALTIME_QUERY_TOKEN", "true", True),
        "heartbeat_seconds": ("REALTIME_HEARTBEAT_SECONDS", "5.5", 5.5),
        "retry_milliseconds": ("REALTIME_RETRY_MILLISECONDS", "1500", 1500),
        "max_queued_bytes": ("REALTIME_MAX_QUEUED_BYTES", "65536", 65536),
        "write_timeout_seconds": ("REALTIME_WRITE_TIMEOUT_SECONDS", "12.5", 12.5),
        "max_streams": ("REALTIME_MAX_STREAMS", "500", 500),
        "max_streams_per_user": ("REALTIME_MAX_STREAMS_PER_USER", "3", 3),
        "max_groups_per_stream": ("REALTIME_MAX_GROUPS_PER_STREAM", "16", 16),
        "stalled_client_grace_seconds": ("REALTIME_STALLED_CLIENT_GRACE_SECONDS", "2.5", 2.5),
        "replay_page_size": ("REALTIME_REPLAY_PAGE_SIZE", "50", 50),
        "keepalive_seconds": ("REALTIME_KEEPALIVE_SECONDS", "7", 7.0),
        "reconnect_max_backoff_seconds": ("REALTIME_RECONNECT_MAX_BACKOFF_SECONDS", "9", 9.0),
        "read_mode": ("REALTIME_READ_MODE", "poll", "poll"),
        "poll_interval_seconds": ("REALTIME_POLL_INTERVAL_SECONDS", "0.05", 0.05),
        "read_database_url": ("REALTIME_READ_DATABASE_URL", REPLICA_URL, REPLICA_URL),
        "pool_min_size": ("REALTIME_POOL_MIN_SIZE", "2", 2),
        "pool_max_size": ("REALTIME_POOL_MAX_SIZE", "8", 8),
        "pool_timeout_seconds": ("REALTIME_POOL_TIMEOUT_SECONDS", "3", 3.0),
        "gc_freeze_at_start": ("REALTIME_GC_FREEZE_AT_START", "false", False),
        "gc_threshold": ("REALTIME_GC_THRESHOLD", "2000", 2000),
        "cors_origins": ("REALTIME_CORS_ORIGINS", "https://a.example", ("https://a.example",)),
        "prometheus": ("REALTIME_PROMETHEUS", "true", True),
    }
    assert set(expected) == set(RealtimeSettings.model_fields), "a setting is not tested"
    settings = settings_from(**{variable: value for variable, value, _ in expected.values()})
    for field, (_, _, value) in expected.items():
        actual = getattr(settings, field)
        if field in ("database_url", "jwt_secret", "jwt_public_key", "read_database_url"):
            actual = actual.get_secret_value()
        assert actual == value, field


def test_a_read_database_is_refused_unless_the_listener_polls(settings_from: Settings) -> None:
    """LISTEN does not work on a replica: the settings say what to set instead."""
    with pytest.raises(ValidationError) as refused:
        settings_from(**_required(REALTIME_READ_DATABASE_URL=REPLICA_URL))
    assert "REALTIME_READ_DATABASE_URL needs REALTIME_READ_MODE=poll" in str(refused.value)
    assert REPLICA_URL not in str(refused.value), "a secret"
    with pytest.raises(ValidationError):
        settings_from(**_required(REALTIME_READ_MODE="listen"))


def test_the_database_is_database_url_unless_realtime_database_url_overrides_it(
    settings_from: Settings,
) -> None:
    override = "postgresql://realtime@replica.example/shop"
    assert settings_from(**_required()).database_url.get_secret_value() == DATABASE_URL
    overridden = settings_from(**_required(REALTIME_DATABASE_URL=override))
    assert overridden.database_url.get_secret_value() == override


def test_variables_without_the_prefix_are_not_settings(settings_from: Settings) -> None:
    assert settings_from(DATABASE_URL=DATABASE_URL, JWT_SECRET=JWT_SECRET).jwt_key is None
    settings = settings_from(
        **_required(HEARTBEAT_SECONDS="5", SSE_HEARTBEAT_SECONDS="5", SSE_MAX_QUEUED_BYTES="10")
    )
    assert (settings.heartbeat_seconds, settings.max_queued_bytes) == (15.0, 4 * 1024 * 1024)


def test_a_missing_database_url_is_refused_naming_the_variable_users_know(
    settings_from: Settings,
) -> None:
    with pytest.raises(ValidationError, match=r"DATABASE_URL \(or REALTIME_DATABASE_URL\)"):
        settings_from(REALTIME_JWT_SECRET=JWT_SECRET)


def test_settings_never_show_the_jwt_secret_or_the_database_password(
    settings_from: Settings,
) -> None:
    settings = settings_from(**_required(REALTIME_JWT_AUDIENCE="shop"))
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert JWT_SECRET not in shown
        assert DATABASE_PASSWORD not in shown
    assert "shop" in repr(settings)


@pytest.mark.parametrize(
    "invalid",
    [
        {"REALTIME_HEARTBEAT_SECONDS": "0"},
        {"REALTIME_JWT_ALGORITHMS": "none"},
        {"REALTIME_JWT_ALGORITHMS": "HS256,RS256"},
        {"REALTIME_POOL_MIN_SIZE": "9"},
        {"REALTIME_RETRY_MILLISECONDS": JWT_SECRET},
    ],
    ids=["tunable", "none", "mixed", "pool", "secret-as-value"],
)
def test_a_validation_error_never_shows_the_jwt_secret_or_the_database_password(
    settings_from: Settings, invalid: dict[str, str]
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_from(**_required(**invalid))
    for shown in (repr(refused.value), str(refused.value)):
        assert JWT_SECRET not in shown
        assert DATABASE_PASSWORD not in shown


@pytest.mark.parametrize(
    ("variable", "algorithms"),
    [
        ("HS256, HS512", ("HS256", "HS512")),
        ("HS256,HS384,HS512", ("HS256", "HS384", "HS512")),
        (" RS256 ,, PS256, ", ("RS256", "PS256")),
    ],
)
def test_algorithms_are_a_comma_separated_list(
    settings_from: Settings, variable: str, algorithms: tuple[str, ...]
) -> None:
    settings = settings_from(
        **_required(REALTIME_JWT_ALGORITHMS=variable, REALTIME_JWT_PUBLIC_KEY="unused-pem")
    )
    assert settings.jwt_algorithms == algorithms


@pytest.mark.parametrize("algorithms", ["none", "None", "HS256,none", "NONE, HS256", "", ","])
def test_the_none_algorithm_and_an_empty_list_are_refused(
    settings_from: Settings, algorithms: str
) -> None:
    with pytest.raises(ValidationError, match="must name real algorithms; 'none' is refused"):
        settings_from(**_required(REALTIME_JWT_ALGORITHMS=algorithms))


@pytest.mark.parametrize(
    ("variable", "origins"),
    [
        ("", ()),
        ("https://app.example.com", ("https://app.example.com",)),
        (
            " https://app.example.com ,, http://localhost:5173, ",
            ("https://app.example.com", "http://localhost:5173"),
        ),
    ],
)
def test_cors_origins_are_a_comma_separated_list_and_none_by_default(
    settings_from: Settings, variable: str, origins: tuple[str, ...]
) -> None:
    assert settings_from(**_required()).cors_origins == ()
    assert settings_from(**_required(REALTIME_CORS_ORIGINS=variable)).cors_origins == origins


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://*.example.com",
        "https://app.example.com/",
        "https://a.example/app",
        "a.example",
    ],
)
def test_a_cors_origin_must_be_a_scheme_and_a_host_and_no_wildcard(
    settings_from: Settings, origin: str
) -> None:
    """Credentials are allowed, so a wildcard would let any site read its visitors' streams; and
    a path never matches the `Origin` a browser sends."""
    with pytest.raises(ValidationError, match="is not an origin such as"):
        settings_from(**_required(REALTIME_CORS_ORIGINS=f"https://ok.example,{origin}"))


@pytest.mark.parametrize("algorithms", ["HS256,RS256", "ES256, HS512", "EdDSA,HS256"])
def test_hmac_and_public_key_algorithms_are_not_mixed(
    settings_from: Settings, algorithms: str
) -> None:
    with pytest.raises(ValidationError, match="must not mix HMAC and public-key algorithms"):
        settings_from(
            **_required(REALTIME_JWT_ALGORITHMS=algorithms, REALTIME_JWT_PUBLIC_KEY="unused-pem")
        )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "REALTIME_JWT_SECRET must be set to verify HS256 tokens"),
        ({"REALTIME_JWT_SECRET": ""}, "REALTIME_JWT_SECRET must be set to verify HS256 tokens"),
        ({"REALTIME_JWT_SECRET": " "}, "REALTIME_JWT_SECRET must be set to verify HS256 tokens"),
        (
            {"REALTIME_JWT_ALGORITHMS": "HS512", "REALTIME_JWT_PUBLIC_KEY": "unused-pem"},
            "REALTIME_JWT_SECRET must be set to verify HS512 tokens",
        ),
        (
            {"REALTIME_JWT_ALGORITHMS": "RS256", "REALTIME_JWT_SECRET": JWT_SECRET},
            "REALTIME_JWT_PUBLIC_KEY must be set to verify RS256 tokens",
        ),
        (
            {"REALTIME_JWT_ALGORITHMS": "RS256", "REALTIME_JWT_PUBLIC_KEY": "\n"},
            "REALTIME_JWT_PUBLIC_KEY must be set to verify RS256 tokens",
        ),
    ],
    ids=[
        "hmac",
        "empty-secret",
        "blank-secret",
        "hmac-with-a-public-key",
        "public-key-with-a-secret",
        "blank-public-key",
    ],
)
def test_the_jwt_key_is_optional_and_a_missing_one_is_named_by_its_variable(
    settings_from: Settings, variables: dict[str, str], message: str
) -> None:
    """Only an app with a `CurrentUser` route needs the key; it then refuses to start with this
    message (see test_a_jwt_app_without_its_key_fails_to_start_naming_the_variable)."""
    settings = settings_from(DATABASE_URL=DATABASE_URL, **variables)
    assert settings.jwt_key is None
    assert settings.missing_jwt_key() == message


def test_a_set_key_is_not_missing(settings_from: Settings) -> None:
    settings = settings_from(**_required())
    assert settings.jwt_key is not None
    assert settings.jwt_key.get_secret_value() == JWT_SECRET
    assert settings.missing_jwt_key() is None


def test_public_key_algorithms_verify_with_the_public_key(settings_from: Settings) -> None:
    settings = settings_from(
        DATABASE_URL=DATABASE_URL,
        REALTIME_JWT_ALGORITHMS="RS256,ES256",
        REALTIME_JWT_PUBLIC_KEY="the-pem",
        REALTIME_JWT_SECRET=JWT_SECRET,
    )
    assert settings.jwt_key is not None
    assert settings.jwt_key.get_secret_value() == "the-pem"


def test_by_default_query_tokens_are_off_and_tokens_live_a_day_at_most_of_any_type(
    settings_from: Settings,
) -> None:
    settings = settings_from(**_required())
    assert settings.query_token is False
    assert settings.jwt_max_lifetime_seconds == 24 * 3600
    assert (settings.jwt_type, settings.jwt_audience) == (None, None)


@pytest.mark.parametrize(
    ("algorithms", "secret", "minimum"),
    [
        ("HS256", "abc", 32),
        ("HS256", "k" * 31, 32),
        ("HS256", "é" * 15, 32),
        ("HS384", "k" * 47, 48),
        ("HS256,HS512", "k" * 63, 64),
    ],
    ids=["three-bytes", "hs256", "bytes-not-characters", "hs384", "the-longest-hash-of-the-list"],
)
def test_an_hmac_secret_shorter_than_its_hash_is_refused_without_showing_it(
    settings_from: Settings, algorithms: str, secret: str, minimum: int
) -> None:
    """One token signed with a short secret is enough to find the secret offline, and then to
    sign tokens for anyone (RFC 7518 §3.2: the key is at least as long as the hash)."""
    with pytest.raises(ValidationError) as refused:
        settings_from(**_required(REALTIME_JWT_ALGORITHMS=algorithms, REALTIME_JWT_SECRET=secret))
    assert f"REALTIME_JWT_SECRET must be at least {minimum} bytes (UTF-8)" in str(refused.value)
    for shown in (repr(refused.value), str(refused.value)):
        assert secret not in shown


@pytest.mark.parametrize(
    ("algorithms", "secret"),
    [("HS256", "é" * 16), ("HS384", "k" * 48), ("HS256,HS512", "k" * 64)],
    ids=["hs256", "hs384", "hs512"],
)
def test_an_hmac_secret_as_long_as_its_hash_is_accepted(
    settings_from: Settings, algorithms: str, secret: str
) -> None:
    settings = settings_from(
        **_required(REALTIME_JWT_ALGORITHMS=algorithms, REALTIME_JWT_SECRET=secret)
    )
    assert settings.jwt_key is not None
    assert settings.jwt_key.get_secret_value() == secret


def test_the_secret_is_not_checked_when_public_key_algorithms_ignore_it(
    settings_from: Settings,
) -> None:
    settings = settings_from(
        DATABASE_URL=DATABASE_URL,
        REALTIME_JWT_ALGORITHMS="RS256",
        REALTIME_JWT_PUBLIC_KEY="the-pem",
        REALTIME_JWT_SECRET="abc",
    )
    assert settings.jwt_key is not None
    assert settings.jwt_key.get_secret_value() == "the-pem"


POSITIVE_TUNABLES = [
    "REALTIME_JWT_MAX_LIFETIME_SECONDS",
    "REALTIME_HEARTBEAT_SECONDS",
    "REALTIME_RETRY_MILLISECONDS",
    "REALTIME_MAX_QUEUED_BYTES",
    "REALTIME_STALLED_CLIENT_GRACE_SECONDS",
    "REALTIME_REPLAY_PAGE_SIZE",
    "REALTIME_KEEPALIVE_SECONDS",
    "REALTIME_RECONNECT_MAX_BACKOFF_SECONDS",
    "REALTIME_POOL_MAX_SIZE",
    "REALTIME_POOL_TIMEOUT_SECONDS",
]


@pytest.mark.parametrize("value", ["0", "-1"])
@pytest.mark.parametrize("variable", POSITIVE_TUNABLES)
def test_non_positive_tunables_are_refused(
    settings_from: Settings, variable: str, value: str
) -> None:
    field = variable.removeprefix("REALTIME_").lower()
    with pytest.raises(ValidationError, match=f"{field}\n  Input should be greater than 0"):
        settings_from(**_required(**{variable: value}))


@pytest.mark.parametrize("value", ["0", "-1", "0.0009", "60.5", "inf"])
def test_a_poll_interval_outside_a_millisecond_to_a_minute_is_refused(
    settings_from: Settings, value: str
) -> None:
    with pytest.raises(ValidationError, match="poll_interval_seconds"):
        settings_from(**_required(REALTIME_POLL_INTERVAL_SECONDS=value))


@pytest.mark.parametrize("value", ["0.001", "60"])
def test_a_poll_interval_of_a_millisecond_to_a_minute_is_accepted(
    settings_from: Settings, value: str
) -> None:
    interval = settings_from(**_required(REALTIME_POLL_INTERVAL_SECONDS=value))
    assert interval.poll_interval_seconds == float(value)


def test_the_replay_pool_may_keep_no_connection_but_not_fewer_nor_more_than_its_maximum(
    settings_from: Settings,
) -> None:
    assert settings_from(**_required(REALTIME_POOL_MIN_SIZE="0")).pool_min_size == 0
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        settings_from(**_required(REALTIME_POOL_MIN_SIZE="-1"))
    with pytest.raises(ValidationError, match="pool_min_size must not exceed pool_max_size"):
        settings_from(**_required(REALTIME_POOL_MIN_SIZE="5", REALTIME_POOL_MAX_SIZE="4"))


def test_an_app_with_invalid_settings_fails_to_start(
    start_realtime_server: ServerFactory,
) -> None:
    with pytest.raises(RuntimeError, match="uvicorn exited"):
        start_realtime_server(REALTIME_HEARTBEAT_SECONDS="0")


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({}, "REALTIME_JWT_SECRET"),
        ({"REALTIME_JWT_SECRET": ""}, "REALTIME_JWT_SECRET"),
        ({"REALTIME_JWT_SECRET": "  "}, "REALTIME_JWT_SECRET"),
        ({"REALTIME_JWT_ALGORITHMS": "RS256"}, "REALTIME_JWT_PUBLIC_KEY"),
    ],
    ids=["unset", "empty", "blank", "public-key"],
)
def test_an_app_with_a_current_user_route_refuses_to_start_without_its_key_naming_it(
    realtime_database_url: str,
    pytestconfig: pytest.Config,
    environment: dict[str, str],
    variable: str,
) -> None:
    output = failed_start_up(
        "tests.app:app",
        pytestconfig.rootpath,
        {"DATABASE_URL": realtime_database_url, **environment},
    )
    assert f"RuntimeError: {variable} must be set to verify" in output
    assert "routes of this app authenticate with CurrentUser" in output
    assert "Application startup failed" in output


def test_an_app_with_a_short_jwt_secret_refuses_to_start_naming_the_variable_not_the_secret(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    secret = "a-signing-key-of-31-bytes-k9x2q"
    output = failed_start_up(
        "tests.app:app",
        pytestconfig.rootpath,
        {"DATABASE_URL": realtime_database_url, "REALTIME_JWT_SECRET": secret},
    )
    assert "REALTIME_JWT_SECRET must be at least 32 bytes (UTF-8) to verify HS256 tokens" in output
    assert "Application startup failed" in output
    assert secret not in output


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("REALTIME_HEARTBEAT_SECONDS", "0", "heartbeat_seconds\n  Input should be greater than 0"),
        ("REALTIME_CORS_ORIGINS", "*", "cors_origins\n  Value error, '*' is not an origin"),
    ],
    ids=["heartbeat", "cors-origins"],
)
def test_an_invalid_setting_is_named_in_uvicorns_output(
    realtime_database_url: str, pytestconfig: pytest.Config, variable: str, value: str, error: str
) -> None:
    """Even one the CORS middleware reads, before the lifespan: the app does not start."""
    output = failed_start_up(
        "tests.app:app",
        pytestconfig.rootpath,
        {"DATABASE_URL": realtime_database_url, "REALTIME_JWT_SECRET": JWT_SECRET, variable: value},
    )
    assert error in output
    assert "Application startup failed" in output
    assert JWT_SECRET not in output
