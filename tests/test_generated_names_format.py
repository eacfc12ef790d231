"""Whatever names a project and its channels have, among those scaffold accepts, every Python file
it generates passes `ruff check` (default rules and import sorting) and `ruff format --check`.

The golden case `long-names` pins one such project; this renders many, in memory, and writes
each to a temporary folder only for ruff to read.
"""

import dataclasses
import keyword
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st
from ruff.__main__ import find_ruff_bin

from scaffold.errors import BadInput
from scaffold.layout import module_path, new_migrations, trigger_slug
from scaffold.names import channel_names, sql_identifier
from scaffold.pipeline import generated_files, up_to_date
from scaffold.project import ChannelRecord, Project, Trigger

RUFF = find_ruff_bin()  # run directly: a Python to start ruff doubles the test's time

SHORT_WORD = st.from_regex(r"[a-z]{1,3}", fullmatch=True)
LONG_WORD = st.from_regex(r"[a-z]{8,16}[0-9]{0,2}", fullmatch=True)
WORDS = st.lists(st.one_of(SHORT_WORD, LONG_WORD), min_size=1, max_size=4)
SPELLINGS = {
    "snake": "_".join,
    "kebab": "-".join,
    "pascal": lambda words: "".join(word.capitalize() for word in words),
}


def spelled(*spellings: str) -> st.SearchStrategy[str]:
    """Names of words spelled in one of `spellings`."""
    return st.builds(
        lambda spell, words: SPELLINGS[spell](words), st.sampled_from(spellings), WORDS
    )


NAMES = spelled(*SPELLINGS)
SNAKE = spelled("snake")
# A package is no Python key word, and its top level no module of the standard library: ruff
# sorts those among the standard library's imports (and the package would shadow it).
PACKAGE_PART = spelled("snake", "pascal").filter(lambda name: not keyword.iskeyword(name))
TOP_PACKAGE = PACKAGE_PART.filter(lambda name: name not in sys.stdlib_module_names)
PACKAGES = st.one_of(TOP_PACKAGE, st.builds("{}.{}".format, TOP_PACKAGE, PACKAGE_PART))


def usable_sql(name: str) -> bool:
    try:
        sql_identifier(name, "--table")
    except BadInput:
        return False
    return True


TRIGGERS = st.one_of(
    st.none(),
    st.builds(
        Trigger,
        SNAKE.filter(usable_sql),
        SNAKE.filter(usable_sql),
        st.one_of(
            st.none(),
            st.lists(SNAKE.filter(usable_sql), min_size=1, max_size=3, unique=True).map(tuple),
        ),
    ),
)


@st.composite
def channels(draw: st.DrawFn) -> tuple[str, str, Trigger | None]:
    """A channel scaffold accepts: (channel, module, trigger)."""
    channel, module, trigger = draw(NAMES), draw(NAMES), draw(TRIGGERS)
    try:
        channel_names(channel, module)
    except BadInput:
        assume(False)
    return channel, module, trigger


@given(
    package=PACKAGES,
    src_layout=st.booleans(),
    tests_package=st.booleans(),
    auth_name=st.one_of(
        st.none(), st.sampled_from(["current_user_id", "user_id_from_the_session"])
    ),
    requested=st.lists(channels(), min_size=1, max_size=2),
)
@settings(max_examples=25, deadline=None, phases=set(Phase) - {Phase.explain})  # ruff is slow
def test_generated_python_passes_ruff_for_any_accepted_names(
    package: str,
    src_layout: bool,
    tests_package: bool,
    auth_name: str | None,
    requested: list[tuple[str, str, Trigger | None]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="scaffold-names-") as folder:
        root = Path(folder)
        if src_layout:  # scaffold finds the package there
            (root / "src" / package.split(".")[0]).mkdir(parents=True)
        if tests_package:
            (root / "tests").mkdir()
            (root / "tests" / "__init__.py").write_text("")
        project = Project(
            root=root,
            package=package,
            app_module=f"{package}.main",
            app_variable="app",
            migrations="migrations",
            tests="tests",
            channels=(),
            auth=None if auth_name is None else (f"{package}.auth", auth_name),
        )
        project, _ = up_to_date(project, adding_channel=True)
        slugs = [trigger_slug(channel_names(c, m)) for c, m, trigger in requested if trigger]
        migrations = iter(new_migrations(project, slugs))
        records = tuple(
            ChannelRecord(channel, module, trigger, next(migrations) if trigger else None)
            for channel, module, trigger in requested
        )
        assume(len({record.names.channel_name for record in records}) == len(records))
        files = generated_files(dataclasses.replace(project, channels=records))
        if project.auth:  # ruff sorts an import as first-party only if its module is on disk
            files[module_path(project, project.auth[0])] = ""

        for path, text in files.items():
            assert all(len(part.encode()) <= 255 for part in Path(path).parts)  # file systems'
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        python_files = sorted(path for path in files if path.endswith(".py"))
        assert ruff_complaints(root, python_files) == ""


def ruff_complaints(root: Path, files: list[str]) -> str:
    """What `ruff check --extend-select I` and `ruff format --check` say about `files`; "" if
    both pass."""
    commands = (
        ["check", "--isolated", "--no-cache", "--extend-select", "I", *files],
        ["format", "--isolated", "--no-cache", "--check", "--diff", *files],
    )
    runs = [
        subprocess.run(
            [RUFF, *command],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        for command in commands
    ]
    return "".join(run.stdout + run.stderr for run in runs if run.returncode)
