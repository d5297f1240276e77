"""Text from data never becomes a workflow command: real commands, hostile data, the runner's parser.

Column names, category values, slice values, file paths and stage messages are chosen to hold
workflow commands (``::error::``, ``::add-mask::``, an escaped newline, ``\\r\\n::set-output``, the
legacy ``##[...]``). Each command runs through ``mlci_lib.cli.main`` as under GitHub Actions, and
its stdout and stderr are read the way the runner reads them: the only commands in them are the
ones mlci meant (annotations titled ``mlci ...``, stop/resume pairs).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlci_lib.cli import main
from mlci_lib.runner import Annotation, CiRunner, inert_json, stop_commands
from tests.helpers.workflow_commands import processed_commands, unintended

#: Each would be a command if it reached the start of a runner line as is.
HOSTILE = [
    "::error::planted",
    "::add-mask::planted",
    "x%0A::warning::planted",
    "x\r\n::set-output name=passed::true",
    "y\r::notice::planted",
    "z ##[error]legacy",
    "  ::stop-commands::abc",
]


def run(argv: list[str], tmp_path: Path) -> tuple[int, str, str, Path, Path]:
    out, err = io.StringIO(), io.StringIO()
    outputs, summary = tmp_path / "outputs.txt", tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)}
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue(), outputs, summary


def assert_no_planted_command(out: str, err: str) -> None:
    for stream in (out, err):
        bad = unintended(stream)
        assert not bad, f"the runner would run {bad}"


# -- the mechanism ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_print_wraps_hostile_text_and_shows_it_whole(text: str) -> None:
    out = io.StringIO()
    CiRunner({"GITHUB_ACTIONS": "true"}, stdout=out).print(f"column {text} is odd")
    log = out.getvalue()
    assert not unintended(log)
    assert f"column {text} is odd" in log  # shown byte for byte, inside the stop block
    names = [c.name for c in processed_commands(log)]
    assert names in (["stop-commands", "resume-commands"], [])


def test_each_stop_block_has_its_own_token_and_commands_resume_after() -> None:
    out = io.StringIO()
    runner = CiRunner({"GITHUB_ACTIONS": "true"}, stdout=out)
    runner.print("::error::one")
    runner.print("::error::two")
    runner.annotate(Annotation("error", "real", title="mlci test"))
    commands = processed_commands(out.getvalue())
    tokens = [c.data for c in commands if c.name == "stop-commands"]
    assert len(tokens) == 2 and len(set(tokens)) == 2 and all(len(t) == 32 for t in tokens)
    assert commands[-1].name == "error" and commands[-1].data == "real"


def test_text_guessing_the_resume_form_cannot_resume() -> None:
    wrapped = stop_commands("::abc::\n::error::planted")
    assert not unintended(wrapped)


def test_annotation_properties_and_data_round_trip_through_the_runner() -> None:
    out = io.StringIO()
    runner = CiRunner({"GITHUB_ACTIONS": "true"}, stdout=out)
    for text in HOSTILE:
        runner.annotate(Annotation("warning", f"value {text}", title=f"mlci {text}", file=f"d/{text}.csv"))
    commands = processed_commands(out.getvalue())
    assert [c.data for c in commands] == [f"value {t}" for t in HOSTILE]
    assert [c.properties["title"] for c in commands] == [f"mlci {t}" for t in HOSTILE]
    assert [c.properties["file"] for c in commands] == [f"d/{t}.csv" for t in HOSTILE]


def test_json_on_stdout_is_inert_and_the_same_value() -> None:
    value = {"columns": HOSTILE, "##[error]key": "##[add-mask]v", "n": [1, 2]}
    for indent in (None, 2):
        text = inert_json(json.dumps(value, indent=indent))
        assert json.loads(text) == value
        assert not processed_commands(text)


def test_with_json_the_whole_log_goes_to_stderr(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    runner = CiRunner({"GITHUB_ACTIONS": "true"}, stdout=out, stderr=err)
    runner.reserve_stdout()
    runner.mask("s3cr3t")
    runner.print("progress ::error::x")
    runner.annotate(Annotation("error", "bad", title="mlci x"))
    runner.print_json('{"a": "##[error]b"}')
    assert json.loads(out.getvalue()) == {"a": "##[error]b"}
    assert [c.name for c in processed_commands(err.getvalue())] == [
        "add-mask", "stop-commands", "resume-commands", "error"
    ]  # fmt: skip


def test_outputs_with_a_value_holding_the_delimiter_form_stay_whole(tmp_path: Path) -> None:
    output = tmp_path / "out"
    runner = CiRunner({"GITHUB_OUTPUT": str(output)})
    value = "a\nMLCI_EOF_0\npassed<<X\ntrue\nX\n"
    runner.set_outputs({"summary": value})
    lines = output.read_text().split("\n")
    delimiter = lines[0].partition("<<")[2]
    assert delimiter.startswith("MLCI_EOF_") and len(delimiter) > 40
    assert lines.count(delimiter) == 1
    end = lines.index(delimiter)
    assert "\n".join(lines[1:end]) == value


# -- real commands, hostile data --------------------------------------------------------------


def _gate_files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    n = 420
    y = rng.integers(0, 2, n)
    score = np.clip(0.5 + (2 * y - 1) * 0.3 + rng.normal(0, 0.2, n), 0, 1)
    region = np.array(HOSTILE * (n // len(HOSTILE)))
    frame = pd.DataFrame(
        {"id": range(n), "label": y, "prediction": (score > 0.5).astype(int), "score": score}
    )
    frame["region"] = region
    # one slice much worse, so that its rule fails and its name reaches the annotation
    bad = frame["region"] == HOSTILE[0]
    frame.loc[bad, "prediction"] = 1 - frame.loc[bad, "label"]
    # Parquet: values with line breaks are one field there (CSV reading of such fields is not
    # what this test is about).
    candidate = tmp_path / "cand ::error::x.parquet"
    frame.to_parquet(candidate, index=False)
    rules = tmp_path / "gate.yaml"
    rules.write_text(
        "metrics:\n  accuracy: {min: 0.6}\n"
        "slices:\n  columns: [region]\n  metrics:\n    accuracy: {min: 0.5}\n"
    )
    return candidate, rules


def test_gate_with_hostile_slice_values(tmp_path: Path) -> None:
    candidate, rules = _gate_files(tmp_path)
    argv = ["gate", "--candidate", str(candidate), "--rules", str(rules), "--slice-min-size", "5",
            "--verdict-file", str(tmp_path / "v.json")]  # fmt: skip
    code, out, err, _outputs, _summary = run(argv, tmp_path)
    assert code == 1, out + err
    assert_no_planted_command(out, err)
    errors = [c for c in processed_commands(out) if c.name == "error"]
    assert any(HOSTILE[0] in c.data for c in errors), out  # the slice is named, as data
    code, out, err, _, _ = run(["--json", *argv], tmp_path)
    assert code == 1 and json.loads(out)["schema"] == "mlci.gate-verdict"
    assert_no_planted_command(out, err)


def test_data_check_with_hostile_column_names_and_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({name: [f"{name}-{i}" for i in range(12)] for name in HOSTILE[:4]})
    frame["plan"] = [HOSTILE[i % len(HOSTILE)] for i in range(12)]
    data = tmp_path / "data ::error::file.parquet"
    frame.to_parquet(data, index=False)
    suite = tmp_path / "suite.yaml"
    columns: dict[str, object] = {name: {"allowed": ["nothing"]} for name in HOSTILE[:4]}
    columns["plan"] = {"allowed": ["free"]}
    columns["::error::missing"] = {"nullable": False}
    suite.write_text(yaml.safe_dump({"name": "::error::suite", "columns": columns}))
    for argv in (["data", "check", str(data), "--suite", str(suite)],
                 ["--json", "data", "check", str(data), "--suite", str(suite)]):  # fmt: skip
        code, out, err, _, _summary = run([*argv, "--result-file", str(tmp_path / "r.json")], tmp_path)
        assert code == 1, out + err
        assert_no_planted_command(out, err)
    profile = tmp_path / "profile.yaml"
    code, out, err, _, _ = run(["data", "profile", str(data), "-o", str(profile)], tmp_path)
    assert code == 0, out + err
    assert_no_planted_command(out, err)


def test_drift_with_hostile_column_names_and_levels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"::error::num": rng.normal(size=300), HOSTILE[3]: rng.choice(["a", "b"], 300)})
    current = pd.DataFrame({"::error::num": rng.normal(3, 1, size=300), HOSTILE[3]: rng.choice(HOSTILE, 300)})
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    reference.to_parquet(ref)
    current.to_parquet(cur)
    for extra in ([], ["--json"]):
        code, out, err, _, _ = run(
            [*extra, "drift", "--reference", str(ref), "--current", str(cur)], tmp_path
        )
        assert code == 1, out + err
        assert_no_planted_command(out, err)


def test_report_of_a_pipeline_with_hostile_stage_messages_and_paths(tmp_path: Path) -> None:
    stages = [
        {"name": "::error::stage", "status": "failed", "message": text, "duration_s": 1.0,
         "verdict_file": None, "verdict": None}
        for text in HOSTILE
    ]  # fmt: skip
    verdict = {
        "schema": "mlci.pipeline-verdict",
        "schema_version": 1,
        "passed": False,
        "status": "failed",
        "failed_stage": "::error::stage",
        "git": {"commit": "a" * 40, "ref": "::error::ref"},
        "data_fingerprint": None,
        "stages": stages,
        "model": None,
        "image": None,
        "config": "::error::mlci.yaml",
        "deployment": None,
    }
    path = tmp_path / "::error::verdict.json"
    path.write_text(json.dumps(verdict))
    report = tmp_path / "##[error]report.md"
    code, out, err, _, _summary = run(
        ["report", str(path), "--report-file", str(report), "--comment", "false"], tmp_path
    )
    assert code in (0, 1), out + err
    assert_no_planted_command(out, err)
    assert report.is_file()


# -- the same through a real workflow run ---------------------------------------------------------

ACT_WORKFLOW = """
on: push
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
        with:
          python-version: '3.11'
      - id: gate
        uses: mlci-dev/mlci/actions/metric-gate@v1
        continue-on-error: true
        with:
          candidate: eval/candidate.parquet
          rules: eval/gate.yaml
          slice-min-size: '5'
          verdict-file: out/verdict.json
      - id: after
        run: echo "gate passed=$PASSED"
        env:
          PASSED: ${{ steps.gate.outputs.passed }}
"""


@pytest.mark.workflow
@pytest.mark.slow
def test_a_workflow_run_takes_no_command_from_slice_values(act_binary: str, tmp_path: Path) -> None:
    from tests.helpers.act import run_workflow

    data = tmp_path / "data"
    data.mkdir()
    candidate, rules = _gate_files(data)
    run = run_workflow(
        act_binary,
        tmp_path,
        ACT_WORKFLOW,
        files={"eval/candidate.parquet": candidate, "eval/gate.yaml": rules},
    )
    assert run.outcome("gate") == "failure", run.log[-4000:]
    # A planted "::set-output name=passed::true" would have set the output; a planted error,
    # warning or notice would be an annotation act reports as a command.
    assert run.outputs("gate")["passed"] == "false", run.log[-4000:]
    commands = [e for e in run.events if e.get("command") and "gate" in (e.get("stepID") or [])]
    outputs = {e["name"]: e["arg"] for e in commands if e["command"] == "set-output"}
    assert set(outputs) == {"version", "python", "passed", "verdict-file", "summary"}
    assert outputs["passed"] == "false"
    for event in [e for e in commands if e.get("stepID") == ["gate", "gate"]]:  # the mlci gate step
        if event["command"] in ("error", "warning", "notice"):
            # act splits a command at the last "::" (GitHub at the first), so it garbles the title of
            # an annotation whose text holds "::"; the line itself is mlci's own.
            assert str(event["raw"]).startswith(f"::{event['command']} title=mlci gate"), event
        assert event["command"] not in ("add-mask", "set-env", "add-path", "save-state"), event
    stops = [e["arg"] for e in commands if e["command"] == "stop-commands"]
    assert stops and all(any(e["command"] == token for e in commands) for token in stops)
    assert "planted" in run.log  # the values are shown, as text


def test_the_installer_escapes_what_it_echoes_of_its_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci_lib import install

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("MLCI_INSTALL_EXTRAS", "data x%0A::add-mask::<img>@admin")
    assert install.main() == 2
    err = capsys.readouterr().err
    (command,) = processed_commands(err)
    assert command.name == "error" and command.properties == {"title": "mlci install"}
    assert "'x%0A::add-mask::<img>@admin'" in command.data  # shown as typed, on one line
    assert "<img>" not in summary.read_text() and "@admin" not in summary.read_text()
