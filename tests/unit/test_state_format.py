"""state.json carries a format number: newer formats are refused with a clear error, older ones migrated."""

from __future__ import annotations

import json

import pytest

from hygge_core import state as state_module
from hygge_core.errors import StoreError
from hygge_core.state import STATE_FORMAT, EntityState

RECORD = {
    "format": STATE_FORMAT,
    "run_id": "r1",
    "run_type": "incremental",
    "files": ["part-r1-00000.parquet"],
    "watermark": {"column": "id", "kind": "int", "value": "41"},
}


def test_current_format_round_trips() -> None:
    state = EntityState.from_json(json.dumps(RECORD), where="lake/t/_hygge/state.json")
    assert (state.run_type, state.files, state.watermark.as_python()) == ("incremental", ["part-r1-00000.parquet"], 41)
    assert EntityState.from_json(state.model_dump_json(), where="x") == state


def test_a_newer_format_is_refused_by_name() -> None:
    newer = {**RECORD, "format": STATE_FORMAT + 1}
    with pytest.raises(StoreError) as raised:
        EntityState.from_json(json.dumps(newer), where="lake/t/_hygge/state.json")
    assert str(raised.value) == (
        f"entity state lake/t/_hygge/state.json has format {STATE_FORMAT + 1}, newer than this hygge understands ({STATE_FORMAT}); "
        "upgrade hygge, or run a full drop with this version to rebuild the entity"
    )


def test_an_older_format_is_migrated_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the current format is one higher, with a migration that renames a key."""
    monkeypatch.setattr(state_module, "STATE_FORMAT", STATE_FORMAT + 1)

    def rename(raw: dict) -> dict:
        return {**{k: v for k, v in raw.items() if k != "rows"}, "rows_last_run": raw["rows"]}

    monkeypatch.setitem(state_module._MIGRATIONS, STATE_FORMAT, rename)
    old = {**RECORD, "rows": 7}
    state = EntityState.from_json(json.dumps(old), where="x")
    assert (state.format, state.rows_last_run, state.run_id) == (STATE_FORMAT + 1, 7, "r1")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({**RECORD, "run_type": "sideways"}), "run_type"),
        (json.dumps({**RECORD, "watermark": {"column": "id", "kind": "float", "value": "1"}}), "watermark.kind"),
    ],
)
def test_damaged_records_name_the_file_and_say_how_to_rebuild(text: str, fragment: str) -> None:
    with pytest.raises(StoreError) as raised:
        EntityState.from_json(text, where="lake/t/_hygge/state.json")
    message = str(raised.value)
    assert message.startswith("cannot read entity state lake/t/_hygge/state.json: ")
    assert fragment in message and "run a full drop to rebuild the entity" in message
