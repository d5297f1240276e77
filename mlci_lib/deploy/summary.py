"""The deploy and canary verdicts for people: Markdown for the job summary, rule lines as the gate's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci_lib.gate.render import describe
from mlci_lib.report.escape import code, text

if TYPE_CHECKING:
    from mlci_lib.deploy.analyze import CanaryVerdict
    from mlci_lib.deploy.apply import ApplyVerdict
    from mlci_lib.deploy.gitops import GitopsResult
    from mlci_lib.deploy.verify import DeployVerdict

_ICONS = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️", "undefined": "❌", "skipped": "➖"}


def canary_markdown(v: CanaryVerdict) -> str:
    word = {"pass": "✅ promote", "warn": "⚠️ promote, with warnings", "fail": "❌ roll back"}[v.status]
    lines = [
        f"### mlci deploy analyze: {word}",
        "",
        f"canary {code(v.canary.selector)} ({v.canary.requests:,} requests) against stable "
        f"{code(v.stable.selector)} ({v.stable.requests:,} requests) over {code(v.window)} from "
        f"{code(v.prometheus)}; {v.confidence * 100:g}% intervals; "
        f"inconclusive rules: **{v.on_inconclusive}**.",
        "",
    ]
    lines.extend(f"- {_ICONS[r.outcome]} {text(describe(r), 600)}" for r in v.rules)
    lines.extend(f"- note: {text(note)}" for note in v.notes)
    return "\n".join(lines) + "\n"


def deploy_markdown(v: DeployVerdict) -> str:
    word = "✅ verified" if v.passed else "❌ not verified"
    lines = [
        f"### mlci deploy verify: {word}",
        "",
        f"{code(v.url)} serving {code(v.model_name)} {code(v.model_digest or '')}"
        + (f" from image {code(v.image_digest)}" if v.image_digest else "")
        + f", checked {v.checked_at}.",
        "",
    ]
    lines.extend(f"- {_ICONS.get(c.outcome, '➖')} {text(c.name)}: {text(c.message, 600)}" for c in v.checks)
    lines.extend(f"- {_ICONS[r.outcome]} {text(describe(r), 600)}" for r in v.latency_rules)
    return "\n".join(lines) + "\n"


def apply_markdown(v: ApplyVerdict) -> str:
    word = "✅ deployed" if v.passed else "↩️ rolled back" if v.undone else "❌ failed"
    lines = [
        f"### mlci deploy apply: {word}",
        "",
        f"{code(v.model_name)} {code(v.image_digest)} on {code(v.cluster.context)} "
        f"({code(v.cluster.server)}) as {code(v.namespace + '/' + v.workload)}"
        + (f", revision {code(v.revision)}" if v.revision else "")
        + f", {v.started_at} to {v.finished_at}.",
        "",
    ]
    lines.extend(f"- applied {code(a.object)} {text(a.action)}" for a in v.applied)
    lines.extend(
        f"- {_ICONS['pass' if s.passed else 'fail']} {text(s.name)}: {text(s.message, 600)}" for s in v.steps
    )
    if v.verification is not None:
        lines.extend(["", deploy_markdown(v.verification)])
    return "\n".join(lines) + "\n"


def gitops_markdown(r: GitopsResult) -> str:
    what = f"committed {code((r.commit or '')[:12])} to" if r.changed else "no change on"
    lines = [
        f"### mlci deploy gitops: {text(r.model_name)} {code(r.image_digest)}",
        "",
        f"{what} {code(r.branch)} of {code(r.repository)} ({code(r.path + '/base')}).",
    ]
    if r.pull_request is not None:
        pull = r.pull_request
        lines.append(f"Pull request [#{pull.number}]({text(pull.url)}) {text(pull.action)}.")
    if r.note:
        lines.append(text(r.note))
    return "\n".join(lines) + "\n"
