"""The project's own CI workflow: every action has a self-test job, and every job keeps the rules."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.helpers.components import REPO_ROOT

CI = REPO_ROOT / ".github" / "workflows" / "ci.yml"


def load_ci() -> dict[str, Any]:
    workflow = yaml.safe_load(CI.read_text())
    assert isinstance(workflow, dict) and workflow.get("jobs"), f"{CI} has no jobs"
    return workflow


def jobs() -> dict[str, dict[str, Any]]:
    return dict(load_ci()["jobs"])


def steps() -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in jobs().items() for step in job.get("steps") or []]


def action_names() -> list[str]:
    return sorted(p.name for p in (REPO_ROOT / "actions").iterdir() if p.is_dir())


def test_actions_are_found() -> None:
    # The parametrized test below must not pass by having nothing to check.
    assert len(action_names()) >= 6, action_names()
    missing = [name for name in action_names() if not (REPO_ROOT / "actions" / name / "action.yml").is_file()]
    assert not missing, f"folders in actions/ without an action.yml: {missing}"


@pytest.mark.parametrize("action", action_names())
@pytest.mark.slow
def test_every_action_has_a_self_test_job(action: str) -> None:
    checked = []
    for name, job in jobs().items():
        job_steps = job.get("steps") or []
        for index, step in enumerate(job_steps):
            if str(step.get("uses", "")).rstrip("/") != f"./actions/{action}":
                continue
            # A self-test checks what the action gave in a later step, through env: (not inside run:).
            read = f"steps.{step.get('id')}.outputs."
            if step.get("id") and any(read in str(later.get("env")) for later in job_steps[index + 1 :]):
                checked.append(name)
    assert checked, (
        f"no job in {CI.name} uses ./actions/{action} with an id and checks its outputs in a later step"
    )


def test_every_job_has_a_timeout() -> None:
    missing = [name for name, job in jobs().items() if "timeout-minutes" not in job]
    assert not missing, f"jobs without timeout-minutes: {missing}"


def test_every_checkout_drops_the_credentials() -> None:
    checkouts = [
        (name, step) for name, step in steps() if str(step.get("uses", "")).startswith("actions/checkout@")
    ]
    assert checkouts
    leaky = [
        name for name, step in checkouts if (step.get("with") or {}).get("persist-credentials") is not False
    ]
    assert not leaky, f"actions/checkout without persist-credentials: false in jobs {leaky}"


def test_permissions_are_empty_by_default_and_set_per_job() -> None:
    assert load_ci().get("permissions") == {}
    missing = [name for name, job in jobs().items() if not isinstance(job.get("permissions"), dict)]
    assert not missing, f"jobs without their own permissions: {missing}"


def test_no_expression_inside_a_run_script() -> None:
    # Expressions are expanded into the script before the shell reads it; pass values through env:.
    found = [name for name, step in steps() if "${{" in str(step.get("run", ""))]
    assert not found, f"${{{{ }}}} inside run: in jobs {found}; pass the value through env:"
