"""One function per pipeline stage: call the stage's library in-process, report a StageOutcome.

Stage functions take the run's state and the stage's settings from ``mlci.yaml``. A check that
does not pass is ``failed``; a stage that cannot do its work (bad input, a service down) raises an
:class:`MlciError`, which the runner records as ``error``. Both stop the pipeline.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlci_lib.errors import ConfigError, InputError
from mlci_lib.pipeline.config import PipelineConfig
from mlci_lib.pipeline.verdict import FAILED, PASSED, SKIPPED, StageRecord, StageStatus

#: The package extra each stage needs, for the hint when its libraries are missing.
EXTRAS = {
    "data-check": "data",
    "baseline": "registry",
    "model-push": "registry",
    "promote": "registry",
    "image-build": "image",
    "image-smoke": "image",
    "image-push": "image",
    "deploy": "deploy",
    "batch-predict": "spark",
}


@dataclasses.dataclass
class StageOutcome:
    status: StageStatus
    message: str
    verdict_file: Path | None = None
    verdict: Mapping[str, Any] | None = None
    hint_extras: str | None = None

    def full_message(self) -> str:
        if self.hint_extras:
            return f"{self.message} (install it with: pip install 'mlci[{self.hint_extras}]')"
        return self.message


@dataclasses.dataclass
class RunState:
    config: PipelineConfig
    environ: Mapping[str, str]
    model: dict[str, Any] | None
    image: dict[str, Any] | None
    records: dict[str, StageRecord]
    git: Any
    say: Callable[[str], None]
    command_output: Callable[[str], None] | None
    data_fingerprint: str | None = None
    #: The deploy stage's link for the verdict (``DeploymentResult.link``).
    deployment: dict[str, Any] | None = None
    #: Hides a secret in the run's logs (the runner's mask), for what a stage learns is one.
    mask: Callable[[str], None] | None = None

    def stage_file(self, name: str) -> Path:
        return self.config.output_dir / name

    def passed(self, stage: str) -> StageRecord | None:
        record = self.records.get(stage)
        return record if record is not None and record.status == PASSED else None

    def tracking_uri(self) -> str:
        from mlci_lib.registry.tracking import resolve_tracking_uri

        return resolve_tracking_uri(
            self.config.tracking_uri, workspace=self.config.root, environ=self.environ
        )


def stage_files(state: RunState, name: str, settings: Mapping[str, Any]) -> list[tuple[Path, bool]]:
    """The files stage ``name`` writes, each with whether it is JSON (else a table, removed first).

    The runner claims them before the stage starts, so a stage that stops leaves no result of an
    earlier run behind (a gate verdict that passed, a champion's predictions, a latency file).
    """
    cfg = state.config
    if name == "data-check":
        return [(state.stage_file("data-check.json"), True)]
    if name == "baseline":
        output = (
            cfg.resolve(settings["output"]) if settings.get("output") else state.stage_file("baseline.csv")
        )
        return [(output, False)]
    if name == "gate":
        return [(state.stage_file("gate-verdict.json"), True)]
    if name == "image-build":
        return [(state.stage_file("image-build.json"), True)]
    if name == "image-smoke":
        latency = cfg.resolve(settings["latency-file"]) if settings.get("latency-file") else None
        return [
            (state.stage_file("image-smoke.json"), True),
            (latency or state.stage_file("latency.json"), True),
        ]
    if name == "deploy":
        return [(state.stage_file("deployment.json"), True)]
    if name == "batch-predict":
        return [(state.stage_file("batch-predict.json"), True)]
    return []


def _write(state: RunState, name: str, result: Any) -> Path:
    from mlci_lib.files import write_json_atomic

    return write_json_atomic(state.stage_file(name), result.to_dict())


# -- data check ---------------------------------------------------------------------------


def _spark_session(cfg: PipelineConfig) -> Any:
    """The Spark session of ``engine: spark`` in mlci.yaml, or None for the pandas engine."""
    if cfg.raw.get("engine", "pandas") != "spark":
        return None
    from mlci_lib.spark.session import SparkSettings, spark_session

    spark = cfg.raw.get("spark") or {}
    conf = [f"{key}={value}" for key, value in (spark.get("conf") or {}).items()]
    return spark_session(SparkSettings.from_options(spark.get("master"), conf))


def data_check(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.data import check_data

    cfg = state.config
    session = _spark_session(cfg)
    if session is not None:
        from mlci_lib.spark.check import check_data_spark

        result = check_data_spark(session, cfg.resolve(settings["data"]), cfg.resolve(settings["suite"]))
    else:
        result = check_data(cfg.resolve(settings["data"]), cfg.resolve(settings["suite"]))
    path = _write(state, "data-check.json", result)
    if result.passed:
        message = f"{result.evaluated} expectations passed on {result.rows:,} rows"
    else:
        first = result.failures[0] if result.failures else None
        what = f"; first: {first.type} on {first.column}" if first is not None and first.column else ""
        problems = f"; {result.problems[0]}" if result.problems else ""
        message = f"{result.failed} of {result.evaluated} expectations failed{what}{problems}"
    return StageOutcome(PASSED if result.passed else FAILED, message, path, result.to_dict())


# -- the user's commands ----------------------------------------------------------------


def _run_user_command(state: RunState, name: str, settings: Mapping[str, Any]) -> StageOutcome | None:
    from mlci_lib.pipeline.commands import command_argv, run_command
    from mlci_lib.pipeline.config import shell_script

    cfg = state.config
    script: str | None = None
    script_env: dict[str, str] = {}
    if settings.get("shell") and not settings.get("command"):
        # ${VAR} values reach the shell as environment variables, never spliced into the script.
        script, script_env = shell_script(str(settings["shell"]), state.environ, f"stages.{name}.shell")
    argv = command_argv(settings.get("command"), script, where=f"stages.{name}")
    shown = settings.get("shell") or shlex.join(settings["command"])
    if len(shown) > 120:
        shown = shown[:117] + "..."
    state.say(f"  $ {shown}")
    timeout = float(settings.get("timeout-minutes", 60)) * 60
    result = run_command(
        argv,
        cwd=cfg.root,
        env={**dict(settings.get("env") or {}), **script_env},
        base_env=state.environ,
        timeout_s=timeout,
        on_line=state.command_output,
    )
    if result.timed_out:
        return StageOutcome(FAILED, f"'{shown}' did not finish in {timeout / 60:g} minutes and was stopped")
    if result.returncode != 0:
        last = next((line for line in reversed(result.tail) if line.strip()), "")
        detail = f": {last.strip()[:300]}" if last else ""
        return StageOutcome(FAILED, f"'{shown}' exited with code {result.returncode}{detail}")
    for output in settings.get("outputs") or ():
        if not cfg.resolve(output).exists():
            return StageOutcome(
                FAILED, f"'{shown}' succeeded but did not write {output} (listed in stages.{name}.outputs)"
            )
    return None


def train(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.models.digest import model_digest

    started = time.time()
    failed = _run_user_command(state, "train", settings)
    if failed is not None:
        return failed
    cfg = state.config
    model = _rel(cfg, cfg.model_path)
    if not cfg.model_path.exists():
        return StageOutcome(FAILED, f"training finished but the model {model} does not exist")
    if _latest_mtime(cfg.model_path) < started - 1.0:
        # A model left over from an earlier run must not pass for the one just trained.
        return StageOutcome(FAILED, f"training did not write {model} (it is from an earlier run)")
    digest = model_digest(cfg.model_path)
    state.model = {"name": cfg.model_name, "version": None, "uri": None, "run_id": None, "digest": digest}
    return StageOutcome(PASSED, f"model written to {_rel(cfg, cfg.model_path)} ({digest[:19]})")


def _latest_mtime(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
    return max(times, default=path.stat().st_mtime)


def evaluate(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.tables import read_table

    failed = _run_user_command(state, "evaluate", settings)
    if failed is not None:
        return failed
    cfg = state.config
    path = cfg.resolve(settings["predictions"])
    columns = [cfg.columns["label"], cfg.columns["prediction"]]
    frame = read_table(path, what="predictions", columns=columns)
    return StageOutcome(PASSED, f"{len(frame):,} predictions in {_rel(cfg, path)}")


# -- registry -----------------------------------------------------------------------------


def baseline(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.registry import baseline_predictions

    cfg = state.config
    ref = settings.get("model") or f"{cfg.model_name}@{cfg.alias}"
    output = cfg.resolve(settings["output"]) if settings.get("output") else state.stage_file("baseline.csv")
    result = baseline_predictions(
        ref,
        cfg.resolve(settings["data"]),
        output,
        label_column=settings.get("label-column") or cfg.columns["label"],
        id_column=cfg.columns["id"],
        keep_columns=list(settings.get("keep-columns") or []),
        proba_prefix=cfg.columns["proba-prefix"],
        tracking_uri=state.tracking_uri(),
        allow_pickle=cfg.allow_pickle,
        trusted_types=cfg.trusted_types,
        missing_ok=settings.get("if-missing", "skip") == "skip",
        workspace=cfg.root,
    )
    if not result.found:
        return StageOutcome(
            SKIPPED,
            f"no model behind {ref} yet (first model): the gate checks absolute rules only",
            None,
            result.to_dict(),
        )
    written = Path(result.output or output)
    return StageOutcome(
        PASSED,
        f"{ref} (version {result.version}) predicted {result.rows:,} rows into {_rel(cfg, written)}",
        written,
        result.to_dict(),
    )


def gate(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.files import read_mapping
    from mlci_lib.gate import run_gate
    from mlci_lib.gate.render import describe
    from mlci_lib.gate.rules import absolute_inline_rule, absolute_rules_only

    cfg = state.config
    if settings.get("candidate"):
        candidate = cfg.resolve(settings["candidate"])
    elif cfg.stage("evaluate") is not None:
        candidate = cfg.resolve(cfg.stages["evaluate"]["predictions"])
    else:
        raise ConfigError(
            "stages.gate needs the candidate's predictions",
            hint="add stages.evaluate, or set stages.gate.candidate",
        )
    record = state.passed("baseline")
    base = Path(record.verdict_file) if record is not None and record.verdict_file else None
    if base is not None and not base.exists():
        base = None
    rules: Any = cfg.resolve(settings["rules"]) if settings.get("rules") else None
    inline = list(settings.get("rule") or [])
    note = ""
    if base is None:
        if rules is not None:
            rules = absolute_rules_only(read_mapping(rules, what="gate file"))
        inline = [r for r in (absolute_inline_rule(r) for r in inline) if r]
        note = " (no champion: absolute rules only)"
    gate_on: Any = run_gate
    session = _spark_session(cfg)
    if session is not None:
        from functools import partial

        from mlci_lib.spark.gate_counts import run_gate_spark

        gate_on = partial(run_gate_spark, session)
    verdict = gate_on(
        candidate,
        base,
        rules,
        rule=inline,
        id_column=cfg.columns.get("id") if base is not None else None,
        label_column=cfg.columns["label"],
        prediction_column=cfg.columns["prediction"],
        score_column=cfg.columns["score"],
        proba_prefix=cfg.columns["proba-prefix"],
        on_inconclusive=settings.get("on-inconclusive"),
        # What the verdict is about, so that model-push accepts it only for this model and data.
        model=cfg.model_path if cfg.model_path.exists() else None,
        data_fingerprint=state.data_fingerprint,
    )
    path = _write(state, "gate-verdict.json", verdict)
    counts = ", ".join(f"{v} {k}" for k, v in (verdict.counts or {}).items() if v)
    if verdict.passed:
        message = f"{counts or 'all rules pass'}{note}"
    else:
        bad = verdict.failing() or verdict.inconclusive()
        message = f"{describe(bad[0]) if bad else counts}{note}"
    return StageOutcome(PASSED if verdict.passed else FAILED, message, path, verdict.to_dict())


def model_push(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    cfg = state.config
    gate_record = state.passed("gate")
    if gate_record is None or not gate_record.verdict_file:
        raise InputError(
            "model-push needs a passed gate verdict in this pipeline run",
            hint="add stages.gate to mlci.yaml, or run 'mlci run --stage gate' first",
        )
    from mlci_lib.registry import push_model

    if not cfg.model_path.exists():
        raise InputError(f"model {cfg.model_path} does not exist", hint="run the train stage first")
    result = push_model(
        cfg.model_path,
        cfg.model_name or "",
        verdict=gate_record.verdict_file,
        tracking_uri=state.tracking_uri(),
        pip_requirements=list(settings.get("pip-requirements") or []) or None,
        data_fingerprint=state.data_fingerprint,
        allow_pickle=cfg.allow_pickle,
        trusted_types=cfg.trusted_types,
        git=state.git,
        workspace=cfg.root,
    )
    state.model = {
        "name": result.name,
        "version": result.version,
        "uri": result.model_uri,
        "run_id": result.run_id,
        "digest": result.digest,
    }
    verb = "registered" if result.created else "already registered as"
    return StageOutcome(PASSED, f"{verb} {result.name} version {result.version}", None, result.to_dict())


# -- image ---------------------------------------------------------------------------------


def _gate_verdict_file(state: RunState) -> str | None:
    record = state.passed("gate")
    return record.verdict_file if record is not None else None


def image_build(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.image import build_image

    cfg = state.config
    model = dict(state.model or {})
    smoke = cfg.stage("image-smoke")
    options: dict[str, Any] = {}
    if settings.get("base-image"):
        options["base_image"] = settings["base-image"]
    if settings.get("python-version"):
        options["python_version"] = str(settings["python-version"])
    if settings.get("runtime"):
        options["runtime"] = settings["runtime"]
    result = build_image(
        cfg.model_path,
        repository=settings["repository"],
        wheelhouse=bool(settings.get("wheelhouse", True)),
        dockerfile=cfg.resolve(settings["dockerfile"]) if settings.get("dockerfile") else None,
        sample_data=cfg.resolve(smoke["data"]) if smoke else None,
        reference_data=cfg.resolve(settings["reference"]) if settings.get("reference") else None,
        model_name=model.get("name") or cfg.model_name,
        model_version=model.get("version"),
        model_uri=model.get("uri"),
        verdict_file=_gate_verdict_file(state),
        git=state.git,
        # The image's own decision: model.allow-pickle lets the pipeline evaluate a pickle, it
        # does not let the pickle into a serving image.
        allow_pickle=bool(settings.get("allow-pickle", False)),
        trusted_types=cfg.trusted_types,
        extra_requirements=[str(r) for r in settings.get("requirements") or ()],
        system_packages=[str(p) for p in settings.get("system-packages") or ()],
        log=state.command_output,
        **options,
    )
    path = _write(state, "image-build.json", result)
    references = list(result.references)
    state.image = {
        "reference": references[0] if references else None,
        "digest": None,
        "tags": references,
        "id": result.image_id,
        "tolerance": result.conversion["tolerance"] if result.conversion else None,
    }
    size = f", {result.size_bytes / 1e6:.0f} MB" if result.size_bytes else ""
    return StageOutcome(PASSED, f"built {', '.join(references)}{size}", path, result.to_dict())


def image_smoke(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.image import smoke_test_image

    cfg = state.config
    image = state.image or {}
    if not image.get("id"):
        raise InputError("image-smoke needs a built image", hint="run the image-build stage first")
    latency = state.stage_file("latency.json")
    if settings.get("latency-file"):
        latency = cfg.resolve(settings["latency-file"])
    result = smoke_test_image(
        image["id"],
        cfg.model_path,
        cfg.resolve(settings["data"]),
        requests=int(settings.get("requests", 100)),
        latency_output=latency,
        allow_pickle=cfg.allow_pickle,
        trusted_types=cfg.trusted_types,
        **({"tolerance": image["tolerance"]} if image.get("tolerance") else {}),
    )
    path = _write(state, "image-smoke.json", result)
    if result.passed:
        p95 = f"; p95 {result.latency.p95_ms:.1f} ms" if result.latency is not None else ""
        message = f"{result.rows} served predictions equal the model's{p95}"
    else:
        message = result.message
    return StageOutcome(PASSED if result.passed else FAILED, message, path, result.to_dict())


def image_push(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.image import push_image

    cfg = state.config
    image = state.image or {}
    smoke = state.passed("image-smoke")
    if smoke is None or smoke.verdict is None:
        raise InputError(
            "image-push needs a passed image-smoke stage: mlci pushes only smoke-tested images",
            hint="add stages.image-smoke to mlci.yaml",
        )
    if not image.get("id"):
        raise InputError("image-push needs a built image", hint="run the image-build stage first")
    username = state.environ.get("MLCI_REGISTRY_USERNAME") or None
    password = state.environ.get("MLCI_REGISTRY_PASSWORD") or None
    if (username is None) != (password is None):
        raise InputError(
            "set both MLCI_REGISTRY_USERNAME and MLCI_REGISTRY_PASSWORD, or neither",
            hint="neither uses the engine's own login (docker login)",
        )
    references = list(image.get("tags") or [])
    repository = references[0].rsplit(":", 1)[0] if references else None
    tags = [ref.rsplit(":", 1)[1] for ref in references if ":" in ref.rsplit("/", 1)[-1]]
    result = push_image(
        image["id"],
        repository=repository,
        tags=tags or None,
        smoke=smoke.verdict,
        username=username,
        password=password,
    )
    state.image = {
        **image,
        "digest": result.digest,
        "reference": result.digest_reference or image.get("reference"),
        "tags": list(result.references) or references,
    }
    model = state.model or {}
    note = ""
    if model.get("version") and cfg.model_name:
        from mlci_lib.registry import tag_model_version

        tag_model_version(
            cfg.model_name,
            model["version"],
            {},
            image_digest=result.digest,
            tracking_uri=state.tracking_uri(),
            workspace=cfg.root,
        )
        note = f"; recorded on {cfg.model_name} version {model['version']}"
    return StageOutcome(PASSED, f"pushed {result.digest_reference}{note}", None, result.to_dict())


def promote(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.registry import promote_model

    cfg = state.config
    model = state.model or {}
    if not model.get("version"):
        raise InputError("promote needs a pushed model version", hint="run the model-push stage first")
    alias = settings.get("alias") or cfg.alias
    result = promote_model(
        cfg.model_name or "", model["version"], alias, tracking_uri=state.tracking_uri(), workspace=cfg.root
    )
    previous = result.previous_version
    was = f" (was version {previous})" if previous else " (first holder)"
    return StageOutcome(
        PASSED, f"{cfg.model_name}@{alias} -> version {result.version}{was}", None, result.to_dict()
    )


# -- deploy ---------------------------------------------------------------------------------


def deploy(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.pipeline.deploy_settings import parse_deploy_stage
    from mlci_lib.pipeline.deployment import deploy_release

    cfg = state.config
    if state.passed("image-push") is None:
        raise InputError(
            "deploy needs a passed image-push stage: mlci deploys only pushed, smoke-tested images",
            hint="add stages.image-push to mlci.yaml",
        )
    # The stage forgets a deployment of an earlier run before it starts: a failure leaves none.
    state.deployment = None
    result_file = state.stage_file("deployment.json")
    rules = _deployment_alert_rules(state)
    result = deploy_release(
        cfg.verdict_file,
        cfg.path,
        cfg.raw.get("deploy"),
        parse_deploy_stage(settings),
        default_name=cfg.model_name,
        resolve=cfg.resolve,
        commit=state.git.commit,
        environ=state.environ,
        result_file=result_file,
        on_line=state.command_output,
        mask=state.mask,
        alert_rules=rules,
    )
    path = _write(state, "deployment.json", result)
    state.deployment = result.link()
    return StageOutcome(PASSED if result.passed else FAILED, result.message, path, result.to_dict())


def _deployment_alert_rules(state: RunState) -> Path | None:
    """The alert rules of ``mlci monitor render`` for the deployment, or None when there are none.

    Rendered when the image bakes a training reference in (``stages.image-build.reference``: the
    series the drift rules compare with) and the manifests have a ServiceMonitor (the Prometheus
    Operator, which loads a PrometheusRule too): into ``.mlci/monitoring``, for the job the
    ServiceMonitor gives the series, with the latency rules of the gate file.
    """
    from mlci_lib.deploy import parse_deploy_config

    cfg = state.config
    build = cfg.stage("image-build") or {}
    if not build.get("reference"):
        return None
    job = parse_deploy_config(cfg.raw.get("deploy"), default_name=cfg.model_name).scraped_as_job
    if job is None:
        return None
    from mlci_lib.monitor.render import render_monitoring

    gate = cfg.stage("gate") or {}
    rendered = render_monitoring(
        cfg.model_path,
        cfg.resolve(build["reference"]),
        state.stage_file("monitoring"),
        gate=cfg.resolve(gate["rules"]) if gate.get("rules") else None,
        job=job,
        allow_pickle=cfg.allow_pickle,
        trusted_types=cfg.trusted_types,
    )
    return Path(rendered.rules)


# -- batch scoring -------------------------------------------------------------------------


def batch_predict(state: RunState, settings: Mapping[str, Any]) -> StageOutcome:
    from mlci_lib.predict import predict_batch
    from mlci_lib.predict.run import DEFAULT_CHUNK_ROWS

    cfg = state.config
    engine = str(settings.get("engine", "pandas"))
    default = "predictions" if engine == "spark" else "predictions.parquet"
    output = cfg.resolve(settings["output"]) if settings.get("output") else state.stage_file(default)
    spark = None
    if engine == "spark":
        from mlci_lib.spark.session import SparkSettings

        conf = [
            f"{k}={str(v).lower() if isinstance(v, bool) else v}"
            for k, v in (settings.get("spark-conf") or {}).items()
        ]
        spark = SparkSettings.from_options(settings.get("spark-master"), conf)
    model = state.model or {}
    result = predict_batch(
        cfg.model_path,
        cfg.resolve(settings["data"]),
        output,
        id_column=settings.get("id-column") or cfg.columns["id"],
        engine=engine,
        chunk_rows=int(settings.get("chunk-rows", DEFAULT_CHUNK_ROWS)),
        runtime=str(settings.get("runtime", "native")),
        allow_pickle=cfg.allow_pickle,
        trusted_types=cfg.trusted_types,
        info={
            k: v
            for k, v in (("name", model.get("name") or cfg.model_name), ("version", model.get("version")))
            if v
        },
        spark=spark,
    )
    path = _write(state, "batch-predict.json", result)
    rate = f", {result.rows_per_second:,.0f} rows/s" if result.rows_per_second else ""
    return StageOutcome(
        PASSED, f"{result.rows:,} rows scored into {_rel(cfg, output)}{rate}", path, result.to_dict()
    )


def _rel(cfg: PipelineConfig, path: Path) -> str:
    try:
        return str(path.relative_to(cfg.root))
    except ValueError:
        return str(path)


STAGE_FUNCTIONS: dict[str, Callable[[RunState, Mapping[str, Any]], StageOutcome]] = {
    "data-check": data_check,
    "train": train,
    "evaluate": evaluate,
    "baseline": baseline,
    "gate": gate,
    "model-push": model_push,
    "image-build": image_build,
    "image-smoke": image_smoke,
    "image-push": image_push,
    "deploy": deploy,
    "promote": promote,
    "batch-predict": batch_predict,
}

__all__ = ["EXTRAS", "STAGE_FUNCTIONS", "RunState", "StageOutcome"]
