"""Every key the configuration parser accepts is in config/kiosk.example.toml and docs/configuration.md,
and every key of the hub's file is in docs/hub.md's example.

The key list is not written here: it is recorded from the parser itself (core/config.py) while it reads
the example with every optional table present, so a key someone adds to the parser later is caught too.
"""

import re
import tomllib
from pathlib import Path

import pytest

from core import config as config_module
from core.config import parse_config
from core.tomlconfig import Section

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "kiosk.example.toml"
DOC = ROOT / "docs" / "configuration.md"

# The example shows [[reasons]] commented out (the default catalogue is the usual choice).
ONE_REASON = '\n[[reasons]]\ncode = "201"\nlabel = "等候时间长"\ngroup = "服务效率"\n'


def _section_name(name: str) -> str:
    return re.sub(r"\.\d+$", "", name)  # "reasons.0" -> "reasons"


@pytest.fixture(scope="module")
def parser_keys() -> set[str]:
    """``section.key`` of every value the parser asks for (tables themselves left out)."""
    asked: set[tuple[str, str, object]] = set()
    original = Section.get

    def recording_get(self, key, kind, *args, **kwargs):
        asked.add((_section_name(self.name), key, kind))
        return original(self, key, kind, *args, **kwargs)

    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8") + ONE_REASON)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Section, "get", recording_get)
        parse_config(data, EXAMPLE)

    tables = {(section, key) for section, key, kind in asked if kind in (dict, list)}
    # Every table the parser knows was read, so none of its keys can hide behind an absent table.
    known_tables = {("", name) for name in config_module._TOP_LEVEL_NAMES}
    known_tables |= {("serial", name) for name in config_module._SERIAL_KEYS}
    assert known_tables <= tables, f"add these tables to {EXAMPLE.name}: {sorted(known_tables - tables)}"
    return {f"{section}.{key}" for section, key, kind in asked if kind not in (dict, list)}


def example_keys() -> set[str]:
    """``section.key`` of every key written in the example, commented out or not."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return {f"{section}.{key}" for section, key in _example_keys(lines)}


def test_the_parser_reads_a_reasonable_number_of_keys(parser_keys):
    assert {"device.id", "serial.card.protocol", "ui.admin_pin_hash", "reasons.group"} <= parser_keys


def test_every_accepted_key_is_in_the_example_file(parser_keys):
    missing = sorted(parser_keys - example_keys())
    assert not missing, f"{EXAMPLE.relative_to(ROOT)} lacks (add them, commented out if optional): {missing}"


def test_every_accepted_key_is_in_the_configuration_doc(parser_keys):
    rows = set(re.findall(r"^\| `([\w.]+)` \|", DOC.read_text(encoding="utf-8"), flags=re.M))
    missing = sorted(parser_keys - rows)
    assert not missing, f"{DOC.relative_to(ROOT)}'s key table lacks rows for: {missing}"


def test_the_doc_and_the_example_describe_no_key_the_parser_refuses(parser_keys):
    rows = set(re.findall(r"^\| `([\w.]+)` \|", DOC.read_text(encoding="utf-8"), flags=re.M))
    assert rows - parser_keys == set()
    assert example_keys() - parser_keys == set()


# --- the hub's configuration file: docs/hub.md's example is the reference --------------------------

HUB_DOC = ROOT / "docs" / "hub.md"


def hub_doc_example() -> str:
    section = HUB_DOC.read_text(encoding="utf-8").split("## Configuration file", 1)[1]
    return section.split("```toml\n", 1)[1].split("```", 1)[0]


def test_every_key_the_hub_accepts_is_in_the_hub_doc_example(tmp_path):
    from hub.config import parse_hub_config

    asked: set[tuple[str, str, object]] = set()
    original = Section.get

    def recording_get(self, key, kind, *args, **kwargs):
        asked.add((_section_name(self.name), key, kind))
        return original(self, key, kind, *args, **kwargs)

    example = hub_doc_example()
    # The files the example names, as a deployment has them (the hub checks its upstream key on load).
    for name in re.findall(r'^\w*file = "([^"]+)"', example, flags=re.M):
        (tmp_path / name).write_text("ab" * 32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Section, "get", recording_get)
        parse_hub_config(tomllib.loads(example), tmp_path / "hub.toml")
    written = {f"{section}.{key}" for section, key in _example_keys(example.splitlines())}
    accepted = {
        f"{section}.{key}" for section, key, kind in asked if kind not in (dict, list) or key == "events"
    }
    tables = {key for section, key, kind in asked if section == ""}
    assert {"server", "database", "deadline", "upstream", "alerts"} <= tables
    assert accepted - written == set(), (
        f"docs/hub.md's configuration example lacks {sorted(accepted - written)}"
    )


def _example_keys(lines: list[str]) -> set[tuple[str, str]]:
    """(table, key) of every key in TOML lines, commented out or not."""
    keys, section = set(), ""
    for line in lines:
        header = re.match(r"#?\s*\[\[?([\w.]+)\]\]?", line)
        if header:
            section = header.group(1)
        elif (assignment := re.match(r"#?\s*(\w+)\s*=", line)) and section:
            keys.add((section, assignment.group(1)))
    return keys
