"""docs/amqp.md documents every option and every method, and its example config validates."""

from __future__ import annotations

import re
import tomllib

from hvmon.daemon.config import parse_config
from hvmon.daemon.plugins import build_plugin_host
from hvmon.plugins.amqp import plugin as amqp_plugin
from hvmon.plugins.amqp.config import OPTIONS
from hvmon.plugins.amqp.methods import build_methods

from .schemas import DOC, schemas


def section(title: str) -> str:
    return DOC.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_option_has_a_row() -> None:
    rows = re.findall(r"^\| `([^|]+)` \|", section("The agent"), re.M)
    documented = {key.strip() for row in rows for key in re.split(r"`, `", row)}
    assert set(OPTIONS) <= documented, set(OPTIONS) - documented


def test_every_method_has_a_row_and_mutating_ones_are_marked() -> None:
    documented: dict[str, bool] = {}
    for line in section("Methods").splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        cls = ""
        for token in re.findall(r"`([\w.]+)`", first):
            if "." in token:
                cls, name = token.split(".", 1)
            else:
                name = token
            documented[f"{cls}.{name}"] = "**M**" in first
    methods = build_methods()
    assert set(documented) == set(methods)
    for name, method in methods.items():
        assert documented[name] == method.mutates, name


def test_every_message_kind_has_a_schema_and_the_example_config_validates() -> None:
    assert set(schemas()) == {"heartbeat", "data", "event", "request", "reply", "locate"}
    block = re.search(r"```toml\n(.*?)```", section("The agent"), re.S)
    assert block is not None
    host = build_plugin_host(plugins=[(amqp_plugin, "amqp-docs")], disabled=("amqp",))
    data = tomllib.loads(block.group(1).replace("/etc/hvmon/amqp.password", __file__))
    config = parse_config(data, host.schema())
    assert config.agents["amqp"].control and config.agents["amqp"].options["allowed_users"]
