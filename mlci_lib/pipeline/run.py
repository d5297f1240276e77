"""``run_pipeline``: execute the stages of ``mlci.yaml`` in order and accumulate one verdict.

Each stage calls mlci's own library in-process (``check_data``, ``run_gate``, the registry and
image functions) or runs the user's command (training, evaluation). The verdict is written
atomically after every stage; the run stops at the first stage that fails or errors. With
``only`` (``mlci run --stage NAME``) the stages named run alone and the verdict already on disk
is updated in place, so a CI job can run the pipeline one step at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from mlci_lib.errors import InputError, MlciError, UsageError
from mlci_lib.files import ERROR_SCHEMA, result_files
from mlci_lib.pipeline import stages as stage_impl
from mlci_lib.pipeline.config import STAGES, PipelineConfig, load_config
from mlci_lib.pipeline.verdict import (
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    PipelineVerdict,
    StageRecord,
    verdict_from_dict,
)

Progress = Callable[[str], None]


def data_fingerprint(paths: Iterable[Path]) -> str | None:
    """One fingerprint for the pipeline's data files (each file's own, combined with its name)."""
    from mlci_lib.fingerprint import data_fingerprint as fingerprint

    return fingerprint(paths)


def _select(config: PipelineConfig, only: Iterable[str], until: str | None, skip: Iterable[str]) -> list[str]:
    only, skip = list(only), list(skip)
    for name in [*only, *skip, *([until] if until else [])]:
        if name not in STAGES:
            raise UsageError(f"unknown stage {name!r}", hint=f"stages are: {', '.join(STAGES)}")
    if only and until:
        raise UsageError("give --stage or --until, not both")
    if only:
        for name in only:
            if name not in config.stages:
                raise UsageError(
                    f"stage {name} is not in {config.path}", hint=f"add a 'stages: {name}:' entry to run it"
                )
        return [s for s in STAGES if s in only]
    chosen = list(STAGES[: STAGES.index(until) + 1]) if until else list(STAGES)
    return [s for s in chosen if s not in skip]


def _previous(config: PipelineConfig) -> PipelineVerdict | None:
    """The verdict on disk, when it is a pipeline verdict of the same pipeline file."""
    from mlci_lib.files import read_json

    if not config.verdict_file.is_file():
        return None
    data = read_json(config.verdict_file, what="pipeline verdict")
    if isinstance(data, dict) and data.get("schema") == ERROR_SCHEMA:
        return None  # an earlier run stopped on an error: there is nothing to keep
    if not isinstance(data, dict) or data.get("schema") != PipelineVerdict.SCHEMA:
        raise InputError(
            f"{config.verdict_file} is not a pipeline verdict (schema {data.get('schema')!r})"
            if isinstance(data, dict)
            else f"{config.verdict_file} is not a pipeline verdict",
            hint="delete it, or point verdict-file in mlci.yaml somewhere else",
        )
    try:
        return verdict_from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"pipeline verdict {config.verdict_file} is malformed: {exc}") from None


def run_pipeline(
    config: str | os.PathLike[str] | PipelineConfig = "mlci.yaml",
    *,
    only: Iterable[str] = (),
    until: str | None = None,
    skip: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    command_output: Progress | None = None,
    mask: Progress | None = None,
) -> PipelineVerdict:
    """Run the pipeline's stages in order, stop at the first failure, and return the verdict.

    ``only`` runs just the named stages and keeps the other stages' records from the verdict on
    disk; ``until`` stops after the named stage; ``skip`` leaves stages out. ``progress`` gets a
    line per stage; ``command_output`` gets the output lines of the user's commands; ``mask`` is
    given each secret a stage learns (a kubeconfig's credentials), to hide it in the logs.
    """
    from mlci_lib.files import write_json_atomic
    from mlci_lib.gitcontext import git_context

    env = os.environ if environ is None else environ
    cfg = config if isinstance(config, PipelineConfig) else load_config(config, environ=env)
    only = list(only)
    selected = _select(cfg, only, until, skip)
    say = progress or (lambda _line: None)
    previous = _previous(cfg) if only else None

    git = git_context(cfg.root, env)
    records: dict[str, StageRecord] = {}
    if previous is not None:
        records = {r.name: r for r in previous.stages}
    state = stage_impl.RunState(
        config=cfg,
        environ=env,
        model=dict(previous.model) if previous and previous.model else None,
        image=dict(previous.image) if previous and previous.image else None,
        records=records,
        git=git,
        say=say,
        command_output=command_output,
        deployment=dict(previous.deployment) if previous and previous.deployment else None,
        mask=mask,
    )
    git_info = {
        "commit": git.commit,
        "ref": git.ref,
        "branch": git.branch,
        "repository": git.repository,
        "run_url": git.run_url,
    }
    fingerprint = data_fingerprint(cfg.data_paths)
    state.data_fingerprint = fingerprint

    def snapshot(status: str) -> PipelineVerdict:
        ordered = tuple(records[s] for s in STAGES if s in records)
        failed = next((r.name for r in ordered if r.status in (FAILED, ERROR)), None)
        passed = status != "running" and failed is None and any(r.status == PASSED for r in ordered)
        return PipelineVerdict(
            passed=passed,
            status="running" if status == "running" else ("passed" if passed else "failed"),
            failed_stage=failed,
            git=git_info,
            data_fingerprint=fingerprint,
            stages=ordered,
            model=state.model,
            image=state.image,
            config=str(cfg.path),
            deployment=state.deployment,
        )

    from mlci_lib.files import output_file

    output_file(cfg.verdict_file, what="pipeline verdict", option="verdict-file in mlci.yaml")
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    # Before any stage runs, the verdict on disk stops saying what an earlier run decided.
    write_json_atomic(cfg.verdict_file, snapshot("running").to_dict())
    for name in selected:
        # A stage that ran before this one failed (in this run or, with --stage, in the
        # verdict on disk for an earlier stage): nothing after it may run.
        blocking = [
            r
            for s, r in records.items()
            if r.status in (FAILED, ERROR) and STAGES.index(s) < STAGES.index(name)
        ]
        if blocking:
            reason = f"stage {blocking[0].name} {blocking[0].status} earlier; {name} did not run"
            records[name] = StageRecord(name, SKIPPED, reason, 0.0)
            write_json_atomic(cfg.verdict_file, snapshot("running").to_dict())
            break
        settings = cfg.stage(name)
        if settings is None:
            reason = "disabled in mlci.yaml" if name in cfg.stages else "not configured in mlci.yaml"
            records[name] = StageRecord(name, SKIPPED, reason, 0.0)
            continue
        say(f"▶ {name}")
        started = time.monotonic()
        try:
            # The stage's own files (its verdict, result, latency file) never outlive a failure.
            with result_files(f"mlci run stage {name}") as files:
                for path, is_json in stage_impl.stage_files(state, name, settings):
                    files.claim(path, what=f"{name} result", json_record=is_json)
                outcome = stage_impl.STAGE_FUNCTIONS[name](state, settings)
        except MlciError as error:
            outcome = stage_impl.StageOutcome(ERROR, error.one_line())
        except ImportError as error:
            outcome = stage_impl.StageOutcome(
                ERROR,
                f"stage {name} needs a module that is not installed ({error.name or error})",
                hint_extras=stage_impl.EXTRAS.get(name),
            )
        record = StageRecord(
            name=name,
            status=outcome.status,
            message=outcome.full_message(),
            duration_s=round(time.monotonic() - started, 3),
            verdict_file=str(outcome.verdict_file) if outcome.verdict_file else None,
            verdict=outcome.verdict,
        )
        records[name] = record
        say(
            f"{'✔' if record.status == PASSED else '–' if record.status == SKIPPED else '✘'} {name}: "
            f"{record.status} ({record.duration_s:.1f}s) {record.message}"
        )
        write_json_atomic(cfg.verdict_file, snapshot("running").to_dict())
        if record.status in (FAILED, ERROR):
            break
    final = snapshot("done")
    write_json_atomic(cfg.verdict_file, final.to_dict())
    return final


def stage_names() -> tuple[str, ...]:
    return STAGES


__all__ = ["PipelineVerdict", "StageRecord", "data_fingerprint", "run_pipeline", "stage_names"]
