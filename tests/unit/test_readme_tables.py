"""The README's tables stay true: every setting has a row in the settings table, every provider the
registry discovers a row in the provider table, every RPC a row in the API overview with the scope
the gateway asks for it, and no row names one that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from imagegateway.v1 import service_pb2
from imagegateway_server.api.auth import GRPC_METHOD_SCOPES
from imagegateway_server.providers.registry import PROVIDER_SPECS
from imagegateway_server.settings import SETTINGS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _first_cells(section: str) -> list[str]:
    return [line.split("|")[1].strip() for line in section.splitlines() if re.match(r"\|\s*[`A-Z]", line)]


def test_every_setting_has_a_row_with_its_default() -> None:
    rows = set()
    for cell in _first_cells(_section("Settings")):
        rows.update(name.strip() for name in cell.split("/"))
    for spec in SETTINGS:
        assert spec.env in rows, f"README settings table lacks {spec.env}"
    unknown = {row for row in rows if row.startswith("IMAGEGW_")} - {spec.env for spec in SETTINGS}
    assert not unknown, f"README settings table names settings that do not exist: {sorted(unknown)}"


def test_every_provider_has_a_row_and_no_row_is_made_up() -> None:
    rows = {cell.strip("`") for cell in _first_cells(_section("Providers")) if cell.startswith("`")}
    assert rows == set(PROVIDER_SPECS), (sorted(rows), sorted(PROVIDER_SPECS))


def _rpc_rows() -> dict[str, str]:
    """The API overview's RPC table as RPC name -> scope; "Create/List/DeleteConfig" names three RPCs."""
    section = _section("API overview")
    table = section[section.index("| RPC | scope | what |") :].split("\n\n", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        names, scope = (cell.strip() for cell in line.split("|")[1:3])
        for name in names.split(", "):
            *verbs, last = name.split("/")
            verb = re.match(r"[A-Z][a-z]+", last)
            if not verbs or verb is None:
                rows[name] = scope
                continue
            noun = last[verb.end() :]
            # "Create/List/DeleteConfig": List takes the plural (ListConfigs).
            rows.update((f"{prefix}{noun}{'s' * (prefix == 'List')}", scope) for prefix in [*verbs, verb.group()])
    return rows


def test_every_rpc_has_a_row_with_its_scope_and_no_row_is_made_up() -> None:
    service = service_pb2.DESCRIPTOR.services_by_name["ImageGateway"]
    assert _rpc_rows() == {method.name: GRPC_METHOD_SCOPES[method.name] for method in service.methods}
