"""`mlci model`: the registry commands push, promote, rollback, baseline and tag."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.columns import add_column_options, columns_from
from mlci_lib.cli.framework import Context, Outcome, add_command, add_group, add_result_file, number

_PUSH = """\
Log a model to MLflow and register it as a new version, with its provenance as tags (git commit,
ref, run URL, data fingerprint, content digest, verdict, image digest). A passing gate or
pipeline verdict computed on this model (mlci gate --model, or mlci run) is required unless
--no-require-verdict; a version pushed without one can never be promoted. Pushing the same
model content from the same commit again returns the existing version. Pip requirements are
given, never inferred (default: the installed scikit-learn, skops, numpy, scipy and pandas,
pinned).

The registry is MLFLOW_TRACKING_URI or --tracking-uri, else an embedded SQLite store in
.mlci/ of the working directory. Credentials come from the environment (MLFLOW_TRACKING_TOKEN,
MLFLOW_TRACKING_USERNAME/PASSWORD) and are masked in all output.

examples:
  mlci model push model/ --name loan-approval --verdict mlci-gate-verdict.json
  mlci model push model/ --name loan-approval --verdict verdict.json --promote-to champion
  mlci model push model.skops --name churn --no-require-verdict --pip-requirement scikit-learn==1.5.2

exit codes: 0 pushed (or already there), 1 the verdict is missing or did not pass, 2 bad input
or the registry failed
"""


def register(subparsers: Any) -> None:
    group = add_group(
        subparsers,
        "model",
        "push a model version, promote or roll back an alias, write an alias's baseline predictions, "
        "tag a version",
    )
    push = add_command(group, "push", handle_push, "register a model version in MLflow", description=_PUSH)
    push.add_argument(
        "model",
        metavar="MODEL",
        help="an mlci model folder, an MLflow model folder, a .skops file, or an XGBoost, LightGBM or "
        "CatBoost model file",
    )
    push.add_argument("--name", required=True, metavar="NAME", help="registered model name")
    push.add_argument("--verdict", metavar="FILE", help="the gate's or the pipeline's verdict JSON")
    push.add_argument(
        "--no-require-verdict",
        dest="require_verdict",
        action="store_false",
        help="push even without a passing verdict (the version is tagged as not passed)",
    )
    push.add_argument(
        "--pip-requirement",
        action="append",
        default=[],
        metavar="SPEC",
        help="a pip requirement of the model, repeatable (default: installed versions, pinned)",
    )
    push.add_argument("--pip-requirements-file", metavar="FILE", help="a requirements.txt for the model")
    push.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FILE",
        help="data to fingerprint into the tags, repeatable",
    )
    push.add_argument("--data-fingerprint", metavar="SHA", help="the data fingerprint, when already known")
    push.add_argument("--image-digest", metavar="DIGEST", help="digest of the serving image, when known")
    push.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra tag, repeatable (not in the mlci. namespace: mlci writes those)",
    )
    push.add_argument(
        "--experiment", default="mlci", metavar="NAME", help="experiment of the run (default mlci)"
    )
    push.add_argument(
        "--promote-to", metavar="ALIAS", help="then move this alias to the version (e.g. champion)"
    )
    _common_model_options(push)
    _tracking_option(push)

    promote = add_command(
        group,
        "promote",
        handle_promote,
        "move an alias to a version whose verdict passed",
        description="Move ALIAS to VERSION if it was pushed with a passing verdict of its own model: its\n"
        "mlci tags say so and the verdict logged with it checks out again. The previous holder is\n"
        "recorded so that 'mlci model rollback' can move it back.\n\n"
        "exit codes: 0 moved (or already there), 1 the version did not pass, 2 bad input",
    )
    promote.add_argument("name", metavar="NAME", help="registered model name")
    promote.add_argument(
        "--version", required=True, type=number(int, low=1), metavar="N", help="the version to promote"
    )
    promote.add_argument("--alias", default="champion", metavar="ALIAS", help="the alias (default champion)")
    _tracking_option(promote)

    rollback = add_command(
        group,
        "rollback",
        handle_rollback,
        "move an alias back to its previous holder",
        description="Move ALIAS back to the version that held it before the last 'mlci model promote'.\n\n"
        "exit codes: 0 moved back, 1 no earlier holder is recorded, 2 bad input",
    )
    rollback.add_argument("name", metavar="NAME", help="registered model name")
    rollback.add_argument("--alias", default="champion", metavar="ALIAS", help="the alias (default champion)")
    _tracking_option(rollback)

    baseline = add_command(
        group,
        "baseline",
        handle_baseline,
        "write an alias's model's predictions on evaluation data",
        description="Load the model behind NAME@ALIAS (or NAME/VERSION) and write its per-row predictions\n"
        "on the evaluation data, for the gate's paired comparison with the candidate.\n\n"
        "example:\n  mlci model baseline loan-approval@champion --data eval.csv --output champion.csv\n\n"
        "exit codes: 0 written (or no model yet, with --missing-ok), 2 bad input or registry failure",
    )
    baseline.add_argument("model_ref", metavar="MODEL", help="NAME@ALIAS or NAME/VERSION")
    baseline.add_argument(
        "--data", required=True, metavar="FILE", help="evaluation data (CSV, Parquet, JSONL)"
    )
    add_result_file(
        baseline,
        "--output",
        what="baseline predictions",
        json_record=False,
        default="mlci-baseline.csv",
        metavar="FILE",
        help="where to write (default mlci-baseline.csv)",
    )
    add_column_options(
        baseline,
        ("label", "id"),
        help={
            "label": "label column of the data",
            "id": "row id column, kept when present (default: id)",
        },
    )
    baseline.add_argument(
        "--keep-column",
        action="append",
        default=[],
        metavar="NAME",
        help="a column to keep (slices), repeatable",
    )
    add_column_options(baseline, ("proba-prefix",), help={"proba-prefix": "multiclass columns prefix"})
    baseline.add_argument(
        "--missing-ok", action="store_true", help="succeed without writing when the alias does not exist yet"
    )
    _common_model_options(baseline)
    _tracking_option(baseline)

    tag = add_command(group, "tag", handle_tag, "set tags on a model version (e.g. the image digest)")
    tag.add_argument("name", metavar="NAME", help="registered model name")
    tag.add_argument("--version", required=True, type=number(int, low=1), metavar="N", help="the version")
    tag.add_argument("--image-digest", metavar="DIGEST", help="sets mlci.image.digest")
    tag.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tag, repeatable (not in the mlci. namespace: mlci writes those)",
    )
    _tracking_option(tag)


def _common_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load pickle/joblib/cloudpickle models (they run code when loaded: only if you trust the file)",
    )
    parser.add_argument(
        "--trust-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="an extra type a skops file may hold, e.g. mypkg.MyTransformer, repeatable",
    )


def _tracking_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///.mlci/mlflow.db)",
    )


def _mask_secrets(args: argparse.Namespace, ctx: Context) -> None:
    from mlci_lib.registry.tracking import secret_values

    for secret in secret_values(getattr(args, "tracking_uri", None)):
        ctx.runner.mask(secret)


def _key_values(items: list[str], option: str) -> dict[str, str]:
    from mlci_lib.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"option {option} takes KEY=VALUE, got {item!r}", hint=f"e.g. {option} team=risk"
            )
        out[key.strip()] = value
    return out


def data_fingerprint_of(args: argparse.Namespace) -> str | None:
    """The data fingerprint a push records: given, or that of --data (the pipeline's function)."""
    from mlci_lib.fingerprint import data_fingerprint

    if args.data_fingerprint:
        return str(args.data_fingerprint)
    return data_fingerprint(args.data)


def handle_push(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.errors import CheckFailed
    from mlci_lib.models import trusted_types_from
    from mlci_lib.registry.promote import promote_model, validate_alias
    from mlci_lib.registry.push import push_model, read_requirements_file
    from mlci_lib.report.escape import code, text
    from mlci_lib.runner import Annotation

    _mask_secrets(args, ctx)
    alias = validate_alias(args.promote_to, option="--promote-to") if args.promote_to else None
    requirements: list[str] | None = None
    if args.pip_requirement or args.pip_requirements_file:
        requirements = list(args.pip_requirement)
        if args.pip_requirements_file:
            requirements += read_requirements_file(args.pip_requirements_file)
    try:
        result = push_model(
            args.model,
            args.name,
            verdict=args.verdict,
            require_verdict=args.require_verdict,
            tracking_uri=args.tracking_uri,
            pip_requirements=requirements,
            data_fingerprint=data_fingerprint_of(args),
            image_digest=args.image_digest,
            allow_pickle=args.allow_pickle,
            trusted_types=trusted_types_from(args.trust_type),
            experiment=args.experiment,
            tags=_key_values(args.tag, "--tag"),
        )
    except CheckFailed as refused:
        # The annotation carries the reason (an ::error:: line on GitHub, a plain line elsewhere).
        return Outcome(
            passed=False,
            summary=f"### mlci model push: ❌ refused\n\n{text(refused.one_line(), 2000)}\n",
            outputs={"pushed": "false"},
            annotations=[Annotation("error", refused.one_line(), title="mlci model push refused")],
        )
    what = "registered" if result.created else "already registered (same content and commit)"
    lines = [
        f"{result.name} version {result.version}: {what}",
        f"  model uri: {result.model_uri}",
        f"  run id:    {result.run_id}",
        f"  digest:    {result.digest}",
        f"  registry:  {result.tracking_uri}",
    ]
    outputs = {
        "pushed": "true",
        "model-uri": result.model_uri,
        "version": result.version,
        "run-id": result.run_id,
        "digest": result.digest,
        "created": "true" if result.created else "false",
        "alias": "",
    }
    summary = (
        "### mlci model push: ✅ "
        + ("registered" if result.created else "already registered")
        + "\n\n| model | version | run | digest |\n| --- | --- | --- | --- |\n"
        + f"| `{result.name}` | {result.version} | `{result.run_id}` | `{result.digest[:19]}…` |\n"
    )
    annotations: list[Annotation] = []
    passed = True
    if alias:
        try:
            promotion = promote_model(result.name, result.version, alias, tracking_uri=args.tracking_uri)
        except CheckFailed as refused:
            passed = False
            lines.append(f"  promotion refused: {refused.one_line()}")
            annotations.append(Annotation("error", refused.one_line(), title="mlci model promote refused"))
            summary += f"\nPromotion to {code(alias)} refused: {text(refused.one_line(), 2000)}\n"
        else:
            outputs["alias"] = alias
            before = promotion.previous_version or "none"
            lines.append(f"  alias {alias}: version {promotion.version} (was {before})")
            summary += f"\nAlias `{alias}` → version {promotion.version} (was {before}).\n"
    return Outcome(
        result=result, passed=passed, text="\n".join(lines), summary=summary, outputs=outputs,
        annotations=annotations,
    )  # fmt: skip


def handle_promote(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.registry.promote import promote_model

    _mask_secrets(args, ctx)
    result = promote_model(args.name, args.version, args.alias, tracking_uri=args.tracking_uri)
    before = result.previous_version or "none"
    text = (
        f"{result.name}@{result.alias} already is version {result.version}"
        if result.action == "unchanged"
        else f"{result.name}@{result.alias}: version {result.version} (was {before})"
    )
    return Outcome(
        result=result,
        text=text,
        summary=f"### mlci model promote\n\n{text}\n",
        outputs={"version": result.version, "previous-version": result.previous_version or ""},
    )


def handle_rollback(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.registry.promote import rollback_model

    _mask_secrets(args, ctx)
    result = rollback_model(args.name, args.alias, tracking_uri=args.tracking_uri)
    text = f"{result.name}@{result.alias}: rolled back to version {result.version}"
    text += f" (was {result.previous_version})"
    return Outcome(
        result=result,
        text=text,
        summary=f"### mlci model rollback\n\n{text}\n",
        outputs={"version": result.version, "previous-version": result.previous_version or ""},
    )


def handle_baseline(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.models import trusted_types_from
    from mlci_lib.registry.baseline import baseline_predictions

    _mask_secrets(args, ctx)
    columns = columns_from(args)
    result = baseline_predictions(
        args.model_ref,
        args.data,
        args.output,
        # An empty option on the command line writes predictions without labels or ids.
        label_column=None if args.label_column == "" else columns.label,
        id_column=None if args.id_column == "" else columns.id,
        keep_columns=args.keep_column,
        proba_prefix=columns.proba_prefix,
        tracking_uri=args.tracking_uri,
        allow_pickle=args.allow_pickle,
        trusted_types=trusted_types_from(args.trust_type),
        missing_ok=args.missing_ok,
    )
    if not result.found:
        text = f"{args.model_ref} does not exist yet: no baseline written (first release)"
    else:
        text = f"{result.name} version {result.version}: {result.rows} predictions written to {result.output}"
    return Outcome(
        result=result,
        text=text,
        outputs={
            "found": "true" if result.found else "false",
            "output": result.output or "",
            "version": result.version or "",
        },
    )


def handle_tag(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.registry.push import tag_model_version

    _mask_secrets(args, ctx)
    tags = _key_values(args.tag, "--tag")
    result = tag_model_version(
        args.name, args.version, tags, image_digest=args.image_digest or None, tracking_uri=args.tracking_uri
    )
    text = f"{result.name} version {result.version}: set " + ", ".join(
        f"{k}={v}" for k, v in result.tags.items()
    )
    return Outcome(result=result, text=text, outputs={"version": result.version})
