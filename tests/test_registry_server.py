"""The registry against a real MLflow tracking server: concurrent pushes and injected faults.

Faults come from a small proxy between mlci and the real server (tests/helpers/faulty_proxy.py):
503 answers with Retry-After, a 500 that must not be retried, and connections dropped halfway
through an artifact upload.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from mlci_lib.errors import ServiceError
from mlci_lib.registry import baseline_predictions, push_model
from mlci_lib.retry import RetryPolicy
from tests.helpers.faulty_proxy import faulty_proxy, path_contains
from tests.test_registry import eval_data, git, make_model, write_verdict

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]

CREATE_VERSION = path_contains("/model-versions/create", "POST")
UPLOAD = path_contains("/mlflow-artifacts/artifacts/", "PUT")
FAST = RetryPolicy(attempts=3, base_delay=0.1, max_delay=0.5)


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def versions_of(uri: str, name: str) -> list[str]:
    return sorted(str(v.version) for v in client(uri).search_model_versions(f"name = '{name}'"))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("server-work")
    return {
        "model": make_model(folder / "model"),
        "verdict": write_verdict(folder / "verdict.json", folder / "model"),
        "eval": eval_data(folder / "eval.csv"),
    }


def _push_worker(
    args: tuple[str, str, str, str], barrier: Any, results: Any
) -> None:  # runs in a spawned process
    model, verdict, uri, name = args
    import mlflow  # noqa: F401  (import before the barrier: the race is the push, not the import)

    from mlci_lib.registry import push_model as push

    barrier.wait(timeout=120)
    try:
        result = push(model, name, verdict=verdict, tracking_uri=uri, git=git("c0ffee" * 6 + "abcd"))
        results.put(("ok", result.version, result.created, result.run_id))
    except Exception as error:  # report, do not hang the parent
        results.put(("error", f"{type(error).__name__}: {error}", False, ""))


def test_concurrent_pushes_converge_on_one_version(mlflow_server: str, files: dict[str, Path]) -> None:
    workers = 4
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    args = (str(files["model"]), str(files["verdict"]), mlflow_server, "concurrent")
    processes = [context.Process(target=_push_worker, args=(args, barrier, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in range(workers)]
    for process in processes:
        process.join(timeout=60)
    errors = [o for o in outcomes if o[0] != "ok"]
    assert not errors, errors
    reported = {o[1] for o in outcomes}
    assert len(reported) == 1, outcomes
    assert versions_of(mlflow_server, "concurrent") == [str(next(iter(reported)))]
    assert sum(1 for o in outcomes if o[2]) == 1, "exactly one process registered the version"

    # The race really happened: more than one process created a run before converging.
    from mlflow.entities import ViewType

    experiment = client(mlflow_server).get_experiment_by_name("mlci")
    runs = client(mlflow_server).search_runs(
        [experiment.experiment_id], "tags.`mlci.push_key` != ''", run_view_type=ViewType.ALL
    )
    racing = [r for r in runs if r.data.tags.get("mlci.git.commit") == "c0ffee" * 6 + "abcd"]
    assert len(racing) >= 2, "the processes did not overlap; the test proved nothing"
    winners = [r for r in racing if r.info.lifecycle_stage == "active"]
    assert len(winners) == 1 and winners[0].info.run_id == next(o[3] for o in outcomes if o[2])
    # No run of the race is left RUNNING: the winner FINISHED, the losers deleted or ended.
    assert winners[0].info.status == "FINISHED"
    running = [(r.info.run_id, r.info.status) for r in racing if r.info.status == "RUNNING"]
    assert not running, running


def _runs_of(uri: str, commit: str) -> list[Any]:
    from mlflow.entities import ViewType

    experiment = client(uri).get_experiment_by_name("mlci")
    return list(
        client(uri).search_runs(
            [experiment.experiment_id], f"tags.`mlci.git.commit` = '{commit}'", run_view_type=ViewType.ALL
        )
    )


def _server_gone_after_the_run_is_created(method: str, path: str) -> bool:
    """Every request after the push created its run (the server died mid-push, answers nothing)."""
    allowed = ("/model-versions/search", "/experiments/get-by-name", "/experiments/create", "/runs/create")
    return not any(fragment in path for fragment in allowed)


def test_a_rerun_ends_the_runs_a_push_killed_midway_left_running(
    mlflow_server: str, files: dict[str, Path]
) -> None:
    commit = "7" * 40
    with faulty_proxy(mlflow_server) as proxy:
        # The server goes away right after the run is created: the upload fails, and so does
        # marking the run FAILED, so the run stays RUNNING, as after a killed server.
        proxy.fail(_server_gone_after_the_run_is_created, times=-1, status=503)
        with pytest.raises(ServiceError):
            push_model(
                files["model"], "killed", verdict=files["verdict"], tracking_uri=proxy.url,
                git=git(commit), policy=FAST,
            )  # fmt: skip
    left = _runs_of(mlflow_server, commit)
    assert [r.info.status for r in left] == ["RUNNING"], "the fault did not leave a run behind"
    assert versions_of(mlflow_server, "killed") == []

    rerun = push_model(
        files["model"], "killed", verdict=files["verdict"], tracking_uri=mlflow_server, git=git(commit)
    )
    assert rerun.created and versions_of(mlflow_server, "killed") == ["1"]
    statuses = {r.info.run_id: r.info.status for r in _runs_of(mlflow_server, commit)}
    assert statuses == {left[0].info.run_id: "FAILED", rerun.run_id: "FINISHED"}


def test_a_rerun_finishes_the_run_of_a_version_whose_push_died_after_registering(
    mlflow_server: str, files: dict[str, Path]
) -> None:
    commit = "8" * 40
    with faulty_proxy(mlflow_server) as proxy:
        # Registered, then the server went away before the run was marked FINISHED.
        proxy.fail(path_contains("/runs/update", "POST"), times=-1, status=503)
        first = push_model(
            files["model"], "died-late", verdict=files["verdict"], tracking_uri=proxy.url, git=git(commit),
            policy=FAST,
        )  # fmt: skip
    assert first.created
    assert [r.info.status for r in _runs_of(mlflow_server, commit)] == ["RUNNING"]
    again = push_model(
        files["model"], "died-late", verdict=files["verdict"], tracking_uri=mlflow_server, git=git(commit)
    )
    assert (again.version, again.created) == (first.version, False)
    assert [r.info.status for r in _runs_of(mlflow_server, commit)] == ["FINISHED"]


def test_503_twice_is_retried_honouring_retry_after(mlflow_server: str, files: dict[str, Path]) -> None:
    with faulty_proxy(mlflow_server) as proxy:
        proxy.fail(CREATE_VERSION, times=2, status=503, retry_after="1")
        result = push_model(
            files["model"], "flaky-503", verdict=files["verdict"], tracking_uri=proxy.url, git=git("1" * 40)
        )
        hits = proxy.hits_to(CREATE_VERSION)
    assert result.created and result.version == "1"
    assert [h.fault for h in hits] == ["status", "status", None]
    # Retry-After: 1 was honoured between attempts.
    assert hits[1].at - hits[0].at >= 0.95 and hits[2].at - hits[1].at >= 0.95
    assert versions_of(mlflow_server, "flaky-503") == ["1"]


def test_a_500_is_not_retried_and_leaves_no_version(mlflow_server: str, files: dict[str, Path]) -> None:
    with faulty_proxy(mlflow_server) as proxy:
        proxy.fail(CREATE_VERSION, times=1, status=500)
        with pytest.raises(ServiceError, match="registering a version of server-500"):
            push_model(
                files["model"], "server-500", verdict=files["verdict"], tracking_uri=proxy.url,
                git=git("2" * 40), policy=FAST,
            )  # fmt: skip
        assert len(proxy.hits_to(CREATE_VERSION)) == 1
        assert versions_of(mlflow_server, "server-500") == []
        rerun = push_model(
            files["model"], "server-500", verdict=files["verdict"], tracking_uri=proxy.url, git=git("2" * 40)
        )
    assert rerun.created and versions_of(mlflow_server, "server-500") == ["1"]


def test_dropped_upload_leaves_no_version_and_a_rerun_registers_one(
    mlflow_server: str, files: dict[str, Path]
) -> None:
    with faulty_proxy(mlflow_server) as proxy:
        proxy.drop(UPLOAD)  # every upload attempt dies halfway
        with pytest.raises(ServiceError, match="uploading the model failed"):
            push_model(
                files["model"], "dropped", verdict=files["verdict"], tracking_uri=proxy.url,
                git=git("3" * 40), policy=FAST,
            )  # fmt: skip
        drops = [h for h in proxy.hits_to(UPLOAD) if h.fault == "drop"]
        assert len(drops) == FAST.attempts, "a dropped connection is retried, a bounded number of times"
        assert versions_of(mlflow_server, "dropped") == []
        failed = client(mlflow_server).search_runs(
            [client(mlflow_server).get_experiment_by_name("mlci").experiment_id],
            f"tags.`mlci.git.commit` = '{'3' * 40}'",
        )
        assert [r.info.status for r in failed] == ["FAILED"]

        proxy.clear()
        rerun = push_model(
            files["model"], "dropped", verdict=files["verdict"], tracking_uri=proxy.url, git=git("3" * 40)
        )
    assert rerun.created and versions_of(mlflow_server, "dropped") == ["1"]


def test_one_dropped_upload_is_retried_with_the_whole_file(
    mlflow_server: str, files: dict[str, Path], tmp_path: Path
) -> None:
    from mlci_lib.registry import promote_model

    with faulty_proxy(mlflow_server) as proxy:
        proxy.drop(path_contains("model.skops", "PUT"), times=1)
        result = push_model(
            files["model"],
            "dropped-once",
            verdict=files["verdict"],
            tracking_uri=proxy.url,
            git=git("4" * 40),
        )
        assert [h.fault for h in proxy.hits_to(path_contains("model.skops", "PUT"))] == ["drop", None]
    promote_model("dropped-once", result.version, tracking_uri=mlflow_server)
    # The retried upload sent the whole file again: the champion loads and predicts.
    baseline = baseline_predictions(
        "dropped-once@champion", files["eval"], tmp_path / "b.csv", label_column="approved",
        tracking_uri=mlflow_server,
    )  # fmt: skip
    assert baseline.rows == 40 and baseline.digest == result.digest
