"""docs/plugins.md documents every hook; docs/configuration.md every key, and its example works."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

from hvmon import hookspecs
from hvmon.daemon.agent import AgentHealth, AgentSpec
from hvmon.daemon.config import AGENT_KEYS, DAEMON_KEYS, Schema, parse_config
from hvmon.daemon.plugins import build_plugin_host

DOCS = Path(__file__).resolve().parents[2] / "docs"


def hook_signatures() -> dict[str, str]:
    """``name(params) -> return`` of every ``hvmon_*`` spec, annotations unquoted."""
    return {name: f"{name}{str(inspect.signature(fn)).replace(chr(39), '')}"
            for name, fn in vars(hookspecs).items()
            if name.startswith("hvmon_") and inspect.isfunction(fn)}


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    text = (DOCS / "plugins.md").read_text()
    headings = re.findall(r"^### `(hvmon_\w+\(.*\).*)`$", text, re.M)
    signatures = hook_signatures()
    assert len(signatures) >= 4
    for signature in signatures.values():
        assert signature in headings, f"docs/plugins.md lacks '### `{signature}`'"
    documented = {heading.split("(")[0] for heading in headings}
    assert documented == set(signatures), "docs/plugins.md documents hooks that do not exist"


def example() -> dict[str, object]:
    text = (DOCS / "configuration.md").read_text()
    section = text.split("## Full example", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "no ```toml block under '## Full example'"
    return tomllib.loads(block.group(1))


class _Idle:
    async def start(self, ctx: object) -> None:
        pass

    async def stop(self) -> None:
        pass

    def health(self) -> AgentHealth:
        return AgentHealth()


def test_the_full_example_validates() -> None:
    data = example()
    host = build_plugin_host(disabled=())
    schema = host.schema()
    agents = dict(schema.agents)
    # an agent the example shows before its plugin is installed here: only the common keys
    for name, table in data.get("agents", {}).items():  # type: ignore[union-attr]
        if name not in agents:
            assert set(table) <= set(AGENT_KEYS), f"{name}: only common keys for stand-ins"
            agents[name] = AgentSpec(name, _Idle, listen=("127.0.0.1:0",))
    config = parse_config(data, Schema(agents, schema.sections, schema.in_tree))
    assert config.daemon.uri == "test:///default"
    assert config.daemon.log_format == "json"
    assert config.agents["prometheus"].listen == ("127.0.0.1:9177", "[::1]:9177")
    # the example is full: it shows every [daemon] key
    assert set(data["daemon"]) == set(DAEMON_KEYS)  # type: ignore[arg-type]


def test_every_key_the_validator_knows_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    table_rows = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    for key in [*DAEMON_KEYS, *AGENT_KEYS]:
        assert key in table_rows, f"docs/configuration.md has no table row for `{key}`"
