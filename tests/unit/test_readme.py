"""The README's commands against the code: every command it shows must exist and parse.

Read from the README itself and from the measurement write-ups it links to (``docs/*.md``, whose
commands are checked like its own): the fenced ``bash`` blocks and the inline code spans that
start with ``harmscan``. Each ``harmscan`` command is parsed by the real CLI (options, arguments,
types; the command is not run) and its ``--set`` overrides resolve against the settings schema;
``./dev`` targets, bench flags, Prefect deployment parameters and Docker Compose services are
checked against their sources. Nothing here starts a service.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import yaml
from typer._click.core import Command  # typer 0.29 vendors its own click
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperGroup

from cli import app as cli_app
from conf.loader import SettingsError, SettingsSource
from conf.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# The README and the write-ups moved out of it into docs/: what either shows must run.
DOCS = "\n".join([README, *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))])

# Placeholders the README writes where a user types their own value.
_PLACEHOLDERS = {"VERSION": "7", "DIR": "/tmp", "PATH": "/tmp", "N": "2"}


def _fenced_bash(text: str = DOCS) -> list[str]:
    """Each command of the bash blocks, continuation lines joined, comments dropped."""
    commands: list[str] = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        # A trailing comma continues a comma-separated value on the next line.
        joined = re.sub(r",\\?\n", ",", joined)
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def _inline_harmscan(text: str = DOCS) -> list[str]:
    """Inline spans like `harmscan status [--json]` or `harmscan kafka up|down|status`, expanded."""
    commands: list[str] = []
    for span in re.findall(r"`(harmscan (?:[a-z-]+)[^`]*)`", text):
        words = [
            w
            for w in span.replace("\\|", "|").replace("[", " ").replace("]", " ").split()
            if w != "..."
        ]
        expanded: list[list[str]] = [[]]
        for word in words:
            options = word.split("|") if "|" in word and "=" not in word else [word]
            expanded = [[*done, option] for done in expanded for option in options]
        commands.extend(shlex.join(words) for words in expanded)
    return commands


def _harmscan_commands(text: str = DOCS) -> list[tuple[str, bool]]:
    """(command, loose): fenced commands parse strictly, prose mentions loosely."""
    fenced = {c for c in _fenced_bash(text) if c.startswith("harmscan ")}
    found = {(c, False) for c in fenced} | {
        (c, True) for c in _inline_harmscan(text) if c not in fenced
    }
    return sorted(found)


@functools.cache
def _root_command() -> TyperGroup:
    cli_app._register_areas()
    command = typer.main.get_command(cli_app.app)
    assert isinstance(command, TyperGroup)
    return command


def _parse(argv: list[str], *, loose: bool = False) -> tuple[list[str], list[str]]:
    """Parse argv as `harmscan` would, without running it; returns (command path, --set items).

    ``loose`` is for a command named in prose (`harmscan produce --rate`): missing arguments and
    option values are allowed, but every option must still be one the command has.
    """
    group = _root_command()
    ctx = group.make_context("harmscan", list(argv), resilient_parsing=loose)
    overrides = list(ctx.params.get("set_") or [])
    path: list[str] = []
    command: Command = group
    rest = [*ctx._protected_args, *ctx.args]
    while isinstance(command, TyperGroup) and rest:
        name, sub, rest = command.resolve_command(ctx, rest)
        if sub is None or name is None:
            raise UsageError(f"harmscan {' '.join(path)} has no command {rest[:1]}")
        path.append(name)
        if loose and not isinstance(sub, TyperGroup):
            known = {opt for param in sub.params for opt in param.opts + param.secondary_opts}
            unknown = [w.split("=")[0] for w in rest if w.startswith("-")]
            unknown = [w for w in unknown if w not in known and w != "--help"]
            if unknown:
                raise UsageError(f"harmscan {' '.join(path)} has no option {unknown}")
        ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=loose)
        command, rest = sub, [*ctx._protected_args, *ctx.args]
    assert loose or not rest, f"unparsed words {rest}"
    return path, overrides


@pytest.mark.parametrize(("command", "loose"), _harmscan_commands())
def test_readme_harmscan_command_parses(command: str, loose: bool) -> None:
    argv = [_PLACEHOLDERS.get(w, w) for w in shlex.split(command)[1:]]
    try:
        _, overrides = _parse(argv, loose=loose)
    except ClickException as exc:
        pytest.fail(f"README command `{command}` does not parse: {exc.format_message()}")
    try:
        SettingsSource.from_cli(None, overrides, None).resolve(env={})
    except SettingsError as exc:
        pytest.fail(f"README command `{command}`: {exc}")


def test_readme_covers_every_subcommand() -> None:
    """Every command of the CLI is shown somewhere in the README, and the parser finds them."""
    documented = {
        tuple(_parse(shlex.split(c)[1:], loose=True)[0][:1]) for c, _ in _harmscan_commands(README)
    }
    group = _root_command()
    missing = {name for name in group.commands if (name,) not in documented}
    assert not missing, f"commands the README never shows: {sorted(missing)}"


@pytest.mark.parametrize(
    ("bad", "loose"),
    [
        ("harmscan promote 7 --gat", False),
        ("harmscan nosuch", False),
        ("harmscan etl 3", False),
        ("harmscan train --epochs three", False),
        ("harmscan demo --source foo", False),
        ("harmscan produce --rat", True),
        ("harmscan kafka upp", True),
    ],
)
def test_the_parser_refuses_what_harmscan_refuses(bad: str, loose: bool) -> None:
    with pytest.raises(UsageError):
        _parse(shlex.split(bad)[1:], loose=loose)


def test_a_misspelt_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="did you mean epochs"):
        SettingsSource.from_cli(None, ["train.epoch=3"], None).resolve(env={})


def _dev_targets() -> set[str]:
    # The arms of the script's `case "${1:-}" in`: one command each.
    targets = set(re.findall(r"^  ([a-z][a-z-]*)\)", (ROOT / "dev").read_text(), flags=re.M))
    assert targets, "./dev has no commands"
    return targets


def test_readme_dev_targets_exist() -> None:
    used = set(re.findall(r"\./dev ([a-z-]+)", DOCS))
    assert used, "the README shows no ./dev command"
    assert used <= _dev_targets(), f"./dev has no {sorted(used - _dev_targets())}"


def test_readme_starts_with_the_main_job_and_the_ci_test_command() -> None:
    first = re.search(r"^```bash\n(.*?)^```", README, flags=re.M | re.S)
    assert first
    commands = [shlex.split(line, comments=True) for line in first.group(1).splitlines()]
    assert commands == [["./dev", "demo"], ["./dev", "test"]]
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert ci == ["./dev test"], ".ci/run must run exactly the README's test command"


def _bench_flags(script: Path) -> set[str]:
    flags: set[str] = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    return flags


def _bench_uses() -> Iterator[tuple[str, str]]:
    for command in _fenced_bash():
        yield from re.findall(r"(bench/\w+\.py)((?: --?[a-z-]+(?: [^-\s]\S*)?)*)", command)
    yield from re.findall(r"`(?:\.venv/bin/python )?(bench/\w+\.py)((?: --?[a-z-]+[^`]*)?)`", DOCS)


@pytest.mark.parametrize(("script", "args"), sorted(set(_bench_uses())))
def test_readme_bench_flags_exist(script: str, args: str) -> None:
    path = ROOT / script
    assert path.is_file(), f"README names {script}, which does not exist"
    used = set(re.findall(r"(?:^|\s)(--[a-z][a-z-]*)", args))
    unknown = used - _bench_flags(path)
    assert not unknown, f"{script} has no {sorted(unknown)}"


def _flow_parameters(module: str, function: str) -> set[str]:
    tree = ast.parse((ROOT / "flows" / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return {a.arg for a in [*node.args.args, *node.args.kwonlyargs]}
    raise AssertionError(f"flows/{module}.py has no {function}")


def test_readme_deployment_runs_name_real_flow_parameters() -> None:
    runs = [c for c in _fenced_bash() if "prefect deployment run" in c]
    assert runs
    for command in runs:
        words = shlex.split(command)
        flow = next(w for w in words if w.endswith("/harmscan")).split("/")[0]
        params = {words[i + 1].split("=")[0] for i, w in enumerate(words) if w == "-p"}
        assert params <= _flow_parameters(flow, flow), f"{flow} has no {params}"


def test_readme_compose_services_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    named = set(re.findall(r"docker compose exec ([a-z0-9-]+)", README))
    named |= set(re.findall(r"--scale ([a-z0-9-]+)=", README))
    for match in re.findall(r"docker compose --profile (\w+) up -d ((?:[a-z0-9-]+ ?)+)", README):
        profile, services = match
        for service in services.split():
            assert profile in compose[service].get("profiles", []), f"{service} not in {profile}"
            named.add(service)
    assert named, "the README shows no compose service"
    assert named <= set(compose), f"docker-compose.yml has no {sorted(named - set(compose))}"


def test_readme_lists_every_alert() -> None:
    rules = yaml.safe_load((ROOT / "ops" / "prometheus" / "alerts.yml").read_text())
    alerts = {
        rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule
    }
    assert alerts
    listed = set(re.findall(r"^\| `(Harmscan\w+)` \|", README, flags=re.M))
    assert listed == alerts, f"README alert table differs: {sorted(listed ^ alerts)}"


# Dotted names in the README that start like a settings section but name something else.
_NOT_SETTINGS = {"mlflow.pytorch", "mlflow.pytorch.load_model"}
_FILE_SUFFIXES = {"py", "json", "log", "png", "lock", "yaml", "csv"}


def _is_setting(name: str, settings: Settings) -> bool:
    """A key, a group of keys, or a derived value (a property) of the resolved settings."""
    value: object = settings
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif not isinstance(value, dict) and hasattr(value, part):
            value = getattr(value, part)
        else:
            return False
    return True


def test_readme_setting_names_exist() -> None:
    """Every `section.key` the README or docs/ name in backticks is a setting (renames follow)."""
    settings = SettingsSource.from_cli(None, [], None).resolve(env={})
    sections = set(type(settings).model_fields)
    names = set(re.findall(r"`([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)`", DOCS))
    names |= {item.split("=")[0] for item in re.findall(r"--set[ =]([a-z0-9_.]+=)", DOCS)}
    checked = {
        n
        for n in names
        if n.split(".")[0] in sections
        and n not in _NOT_SETTINGS
        and n.rsplit(".", 1)[1] not in _FILE_SUFFIXES
        and not (ROOT / (n.replace(".", "/") + ".py")).exists()
        and not (ROOT / (n.rsplit(".", 1)[0].replace(".", "/") + ".py")).exists()
    }
    assert len(checked) > 50, sorted(checked)
    unknown = sorted(n for n in checked if not _is_setting(n, settings))
    assert not unknown, f"the README names settings that do not exist: {unknown}"


def _recipe_configs() -> list[str]:
    text = re.sub(r",\\?\n", ",", re.sub(r"\\\n\s*", "", DOCS))
    found = re.findall(r"recipe_bench\.py[^\n`]*?--configs ([^\s`]+)", text)
    names = (names.strip("'\"") for names in found)  # the shell's quotes are not the list's
    return sorted({name for listed in names for name in listed.split(",") if name})


def test_readme_recipe_bench_configs_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configuration the README or docs/ run with bench/recipe_bench.py is one it knows."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import recipe_bench

    names = _recipe_configs()
    assert len(names) > 20, names
    for name in names:
        # ~SET picks the configuration's calibration sets; the rest raises ValueError naming
        # the valid ones
        recipe_bench.config(recipe_bench._calibrated_by(name, [])[0])
    with pytest.raises(ValueError, match="unknown configuration"):
        recipe_bench.config("prior+prob")
