"""The README's YAML reference and the configuration models must describe the same keys."""

from __future__ import annotations

from pathlib import Path

from hygge_core import reference

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_model_key_is_documented_and_every_documented_key_exists():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    documented = reference.documented_keys(readme)
    models = reference.model_keys()
    assert models - documented == set(), "keys missing from the README (run: python -m hygge_core.reference --write README.md)"
    assert documented - models == set(), "README documents keys the models do not have"


def test_readme_reference_is_exactly_the_generated_text():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert reference.render() in readme, "regenerate with: python -m hygge_core.reference --write README.md"


def test_annotated_types_print_as_what_they_annotate():
    """Only a Duration is a duration: a constrained int stays an int, and an optional duration says so."""
    from typing import Annotated

    from pydantic import Field

    from hygge_core.durations import Duration

    assert reference._type_text(Duration) == "`duration`"
    assert reference._type_text(Duration | None) == "`duration or None`"
    assert reference._type_text(Annotated[int, Field(ge=1)]) == "`int`"
    assert reference._type_text(list[str] | None) == "`list[str] or None`"
