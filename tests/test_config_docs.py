"""Every key the configuration parser accepts is in config/kiosk.example.toml and docs/configuration.md.

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
    keys, section = set(), ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        header = re.match(r"#?\s*\[\[?([\w.]+)\]\]?", line)
        if header:
            section = header.group(1)
            continue
        assignment = re.match(r"#?\s*(\w+)\s*=", line)
        if assignment and section:
            keys.add(f"{section}.{assignment.group(1)}")
    return keys


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
