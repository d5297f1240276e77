"""One schema per file mlci writes: shipped, equal to the dataclasses, enforced on write and read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci_lib import result_schemas
from mlci_lib.files import error_record, write_json_atomic
from mlci_lib.gate import GateVerdict, run_gate
from mlci_lib.result_schemas import SchemaError, from_dict

SCHEMAS = Path(result_schemas.__file__).parent / "schemas"


def test_every_result_kind_ships_its_schema_and_it_is_current() -> None:
    generated = result_schemas.generated_schemas()
    assert len(generated) >= 26
    for name, schema in generated.items():
        path = SCHEMAS / f"{name}.schema.json"
        assert path.exists(), f"{name}: run python -m mlci_lib.result_schemas"
        assert path.read_text() == result_schemas.schema_text(schema), (
            f"{path.name} is stale: run python -m mlci_lib.result_schemas"
        )
    shipped = set(result_schemas.shipped_names())
    assert shipped == set(generated) | set(result_schemas.HAND_WRITTEN), "a shipped schema has no writer"


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMAS.glob("mlci.*.schema.json")))
@pytest.mark.slow
def test_every_shipped_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    import jsonschema

    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == name.removesuffix(".schema.json")


def test_closed_vocabularies_are_enumerations_in_the_schema() -> None:
    schema = result_schemas.schema_of(GateVerdict)
    rule = schema["$defs"]["RuleResult"]["properties"]["outcome"]
    assert set(rule["enum"]) == {"pass", "fail", "inconclusive", "undefined", "skipped"}
    assert set(schema["properties"]["status"]["enum"]) == {"pass", "warn", "fail"}


@pytest.fixture
def verdict(tmp_path: Path) -> GateVerdict:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    frames = []
    for noise in (0.2, 0.25):
        flip = rng.random(300) < noise
        frames.append(
            pd.DataFrame(
                {"id": range(300), "label": labels, "prediction": np.where(flip, 1 - labels, labels)}
            )
        )
    frames[0].to_csv(tmp_path / "candidate.csv", index=False)
    frames[1].to_csv(tmp_path / "baseline.csv", index=False)
    return run_gate(
        tmp_path / "candidate.csv",
        tmp_path / "baseline.csv",
        rule=["accuracy min=0.5 max-drop=0.05"],
        id_column="id",
        resamples=200,
    )


def test_a_verdict_reads_back_into_the_same_typed_result(verdict: GateVerdict) -> None:
    document = verdict.to_dict()
    again = from_dict(GateVerdict, document)
    assert isinstance(again, GateVerdict)
    assert again.to_dict() == document
    assert again.rules[0].outcome == verdict.rules[0].outcome


@pytest.mark.parametrize(
    ("forge", "where"),
    [
        (lambda d: d.update(passed="yes"), "passed"),
        (lambda d: d.update(status="passed"), "status"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["rules"][0].update(outcome="ok"), "rules/0/outcome"),
        (lambda d: d.pop("rules"), "rules"),
        (lambda d: d.update(schema_version=99), "schema_version"),
    ],
)
def test_a_forged_or_foreign_document_is_refused_naming_the_field(
    verdict: GateVerdict, forge, where: str
) -> None:
    document = json.loads(verdict.to_json())
    forge(document)
    with pytest.raises(SchemaError) as caught:
        from_dict(GateVerdict, document, what="verdict.json")
    assert "verdict.json" in str(caught.value)
    assert where.split("/")[0] in str(caught.value)


def test_a_document_of_another_kind_is_named_as_such(verdict: GateVerdict) -> None:
    document = {**verdict.to_dict(), "schema": "mlci.drift-verdict"}
    with pytest.raises(SchemaError, match=r"is a 'mlci\.drift-verdict' document"):
        from_dict(GateVerdict, document)


def test_a_document_that_does_not_match_is_never_written(verdict: GateVerdict, tmp_path: Path) -> None:
    target = tmp_path / "verdict.json"
    write_json_atomic(target, verdict.to_dict())
    before = target.read_text()
    broken = dataclasses.replace(verdict, status="maybe")
    with pytest.raises(SchemaError, match="status"):
        write_json_atomic(target, broken.to_dict())
    assert target.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["verdict.json", "candidate.csv", "baseline.csv"]
    )


def test_an_unknown_mlci_kind_has_no_schema_and_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="ships no schema"):
        write_json_atomic(tmp_path / "x.json", {"schema": "mlci.nothing", "schema_version": 1})
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("status", ["running", "error", "not-written"])
def test_result_placeholders_match_the_error_schema(status: str) -> None:
    assert result_schemas.problems(error_record("mlci gate", "stopped", status=status)) == []
