import itertools
import keyword
import re
import string

import pytest
from fastapi_pg_sse import Channel
from hypothesis import given
from hypothesis import strategies as st

from scaffold.errors import BadInput
from scaffold.names import CHANNEL_NAME_MAX_BYTES, ChannelNames, channel_names, sql_identifier

PG_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


@pytest.mark.parametrize(
    ("channel", "class_", "snake", "kebab", "title"),
    [
        ("Stock", "Stock", "stock", "stock", "stock"),
        ("StockLevel", "StockLevel", "stock_level", "stock-level", "stock level"),
        ("stock_level", "StockLevel", "stock_level", "stock-level", "stock level"),
        ("stock-level", "StockLevel", "stock_level", "stock-level", "stock level"),
        ("HTTPLog", "HTTPLog", "http_log", "http-log", "HTTP log"),
        ("Http2Log", "Http2Log", "http2_log", "http2-log", "http2 log"),
    ],
)
def test_channel_spellings_inflect_to_class_snake_kebab_and_title(
    channel: str, class_: str, snake: str, kebab: str, title: str
) -> None:
    names = channel_names(channel, "inventory")

    assert names.channel_class == class_
    assert names.channel_snake == snake
    assert names.channel_kebab == kebab
    assert names.channel_title == title


@pytest.mark.parametrize(
    ("module", "package", "url"),
    [
        ("inventory", "inventory", "inventory"),
        ("warehouse-ops", "warehouse_ops", "warehouse-ops"),
        ("warehouse_ops", "warehouse_ops", "warehouse-ops"),
        ("WarehouseOps", "warehouse_ops", "warehouse-ops"),
    ],
)
def test_module_spellings_give_package_and_url_segments(
    module: str, package: str, url: str
) -> None:
    names = channel_names("Stock", module)

    assert (names.module_package, names.module_url) == (package, url)


def test_channel_and_route_names_derive_from_module_and_channel() -> None:
    assert channel_names("StockLevel", "warehouse-ops") == ChannelNames(
        channel_class="StockLevel",
        channel_snake="stock_level",
        channel_kebab="stock-level",
        channel_title="stock level",
        module_package="warehouse_ops",
        module_url="warehouse-ops",
        channel_name="warehouse_ops_stock_level",
        route_prefix="/warehouse-ops/events/stock-level",
    )


REFUSED_NAMES = [
    ("", "is empty"),
    ("   ", "is empty"),
    ("\t", "is empty"),
    ("2fast", "must start with a letter"),
    ("_stock", "must not start or end with '_' or '-'"),
    ("stock_", "must not start or end with '_' or '-'"),
    ("-stock", "must not start or end with '_' or '-'"),
    ("stock--level", "doubled separator"),
    ("stock__level", "doubled separator"),
    ("stock-level_count", "mixes '-' and '_'"),
    ("stock_2nd", "has a word starting with a digit"),
    ("Stöck", "contains 'ö'"),
    ("Stock Level", "contains ' '"),
    ("stock.level", "contains '.'"),
    ("Stock\n", "contains '\\n'"),
    ("stock/level", "must be a name, not a path"),
    ("..\\stock", "must be a name, not a path"),
    ("..", "must be a name, not a path"),
    ("../inventory", "must be a name, not a path"),
    ("Class", "becomes 'class', which is a Python keyword"),
    ("In", "becomes 'in', which is a Python keyword"),
    ("Match", "becomes 'match', which is a Python keyword"),
    ("List", "becomes 'list', which shadows a Python builtin"),
    ("Type", "becomes 'type', which shadows a Python builtin"),
    ("Id", "becomes 'id', which shadows a Python builtin"),
    ("open", "becomes 'open', which shadows a Python builtin"),
]


@pytest.mark.parametrize(("channel", "fragment"), REFUSED_NAMES)
def test_invalid_channel_name_is_refused_with_reason_and_example(
    channel: str, fragment: str
) -> None:
    with pytest.raises(BadInput) as refused:
        channel_names(channel, "inventory")

    message = str(refused.value)
    assert message.startswith(f"channel name {channel!r} ")
    assert fragment in message
    assert "use a name like 'Stock' or 'StockLevel'" in message


@pytest.mark.parametrize(("module", "fragment"), REFUSED_NAMES)
def test_invalid_module_name_is_refused_with_reason_and_example(module: str, fragment: str) -> None:
    with pytest.raises(BadInput) as refused:
        channel_names("Stock", module)

    message = str(refused.value)
    assert message.startswith(f"module name {module!r} ")
    assert fragment in message
    assert "use a name like 'inventory' or 'warehouse_ops'" in message


def test_leading_digit_message_says_what_is_accepted() -> None:
    with pytest.raises(BadInput, match=re.escape("channel name '2fast' must start with a letter")):
        channel_names("2fast", "inventory")


@pytest.mark.parametrize(
    ("channel", "module", "channel_name"),
    [
        ("Date", "current", "current_date"),
        ("User", "system", "system_user"),
        ("Schema", "current", "current_schema"),
    ],
)
def test_a_channel_name_that_is_a_reserved_sql_key_word_is_accepted(
    channel: str, module: str, channel_name: str
) -> None:
    """The channel's name is a string value in SQL, never an identifier: no key word clashes."""
    assert channel_names(channel, module).channel_name == channel_name
    assert Channel(channel_name).name == channel_name


def test_a_channel_name_of_exactly_53_bytes_is_accepted_and_the_runtime_takes_it() -> None:
    names = channel_names("s" * 43, "inventory")

    assert len(names.channel_name.encode()) == CHANNEL_NAME_MAX_BYTES == 53
    assert Channel(names.channel_name).name == names.channel_name


def test_a_channel_name_of_54_bytes_is_refused_saying_how_long_it_is_and_why() -> None:
    with pytest.raises(BadInput) as refused:
        channel_names("s" * 44, "inventory")

    channel_name = "inventory_" + "s" * 44
    assert str(refused.value) == (
        f"the channel's name {channel_name!r}, from channel {'s' * 44!r} in module 'inventory',"
        " is 54 bytes, over the runtime's 53 (its triggers are named <name>_on_insert, and"
        " PostgreSQL's names stop at 63 bytes); use a shorter channel or module name"
    )
    with pytest.raises(ValueError, match="at most 53"):
        Channel(channel_name)


def test_an_overlong_module_name_is_refused_by_the_size_of_the_channels_name() -> None:
    with pytest.raises(BadInput, match=r"the channel's name 'x{60}_stock', .* is 66 bytes"):
        channel_names("Stock", "x" * 60)


@pytest.mark.parametrize("name", ["baskets", "user_id", "_private", "t2", "a" * 63])
def test_plain_lowercase_sql_identifier_is_returned(name: str) -> None:
    assert sql_identifier(name, "--table") == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Baskets!", "is not a plain lowercase PostgreSQL identifier"),
        ("Baskets", "is not a plain lowercase PostgreSQL identifier"),
        ("1baskets", "is not a plain lowercase PostgreSQL identifier"),
        ("", "is not a plain lowercase PostgreSQL identifier"),
        ("baskets\n", "is not a plain lowercase PostgreSQL identifier"),
        ("bäskets", "is not a plain lowercase PostgreSQL identifier"),
        ("public.baskets", "is not a plain lowercase PostgreSQL identifier"),
        ("a" * 64, "is 64 bytes, over PostgreSQL's 63-byte identifier limit"),
        ("user", "reserved PostgreSQL key word"),
        ("order", "reserved PostgreSQL key word"),
        ("join", "reserved PostgreSQL key word"),
    ],
)
def test_unusable_sql_identifier_is_refused_naming_the_option(name: str, fragment: str) -> None:
    with pytest.raises(BadInput) as refused:
        sql_identifier(name, "--table")

    message = str(refused.value)
    assert message.startswith(f"--table {name!r} ")
    assert fragment in message


# --- properties -------------------------------------------------------------------------------

WORDS = st.lists(st.from_regex(r"[a-z]{2,8}[0-9]{0,2}", fullmatch=True), min_size=1, max_size=6)


def snake(words: list[str]) -> str:
    return "_".join(words)


def kebab(words: list[str]) -> str:
    return "-".join(words)


def pascal(words: list[str]) -> str:
    return "".join(word.capitalize() for word in words)


def upper_snake(words: list[str]) -> str:
    return "_".join(words).upper()


SPELLINGS = [snake, kebab, pascal]
PLAUSIBLE_NAMES = st.builds(lambda spell, words: spell(words), st.sampled_from(SPELLINGS), WORDS)
ARBITRARY_NAMES = st.one_of(
    st.text(), st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1)
)
NAMES = st.one_of(
    PLAUSIBLE_NAMES,
    st.builds(upper_snake, WORDS),
    st.sampled_from(["HTTPLog", "Http2Log", "WarehouseOps", "inventory"]),
    ARBITRARY_NAMES,
)


def assert_usable_everywhere(names: ChannelNames) -> None:
    for python_name in (
        names.channel_snake,
        names.module_package,
        names.channel_class + "NotifyService",
    ):
        assert python_name.isidentifier()
        assert not keyword.iskeyword(python_name)
        assert not keyword.issoftkeyword(python_name)
    assert PG_IDENTIFIER.fullmatch(names.channel_name)
    assert len(names.channel_name.encode()) <= CHANNEL_NAME_MAX_BYTES
    assert Channel(names.channel_name).name == names.channel_name  # the runtime takes it
    assert names.route_prefix == f"/{names.module_url}/events/{names.channel_kebab}"


@given(channel=NAMES, module=NAMES)
def test_every_accepted_name_yields_valid_python_identifiers_and_a_runtime_channel_name(
    channel: str, module: str
) -> None:
    try:
        names = channel_names(channel, module)
    except BadInput:
        return
    assert_usable_everywhere(names)


@given(channel=ARBITRARY_NAMES, module=st.one_of(ARBITRARY_NAMES, PLAUSIBLE_NAMES))
def test_arbitrary_text_is_either_accepted_or_refused_with_bad_input(
    channel: str, module: str
) -> None:
    try:
        names = channel_names(channel, module)
    except BadInput as refused:
        assert str(refused)
    else:
        assert_usable_everywhere(names)


@given(channel_words=WORDS, module_words=WORDS)
def test_snake_kebab_and_pascal_spellings_of_the_same_words_agree(
    channel_words: list[str], module_words: list[str]
) -> None:
    outcomes: set[ChannelNames | None] = set()
    for spell_channel, spell_module in itertools.product(SPELLINGS, SPELLINGS):
        try:
            outcomes.add(channel_names(spell_channel(channel_words), spell_module(module_words)))
        except BadInput:
            outcomes.add(None)
    assert len(outcomes) == 1


@given(name=st.text())
def test_sql_identifier_returns_its_input_or_refuses_with_bad_input(name: str) -> None:
    try:
        assert sql_identifier(name, "--table") == name
    except BadInput:
        return
    assert PG_IDENTIFIER.fullmatch(name)
