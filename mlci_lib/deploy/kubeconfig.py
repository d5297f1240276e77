"""The kubeconfig ``mlci deploy apply`` talks to a cluster with: read, checked, its secrets known.

It comes from a file or from an environment variable holding its content (a CI secret). The
content is parsed with YAML before kubectl sees it, so a broken secret is a one-line error naming
where it came from and the line and column, never kubectl's trace, and never a quote of the
content (YAML's own messages show the offending line, which may hold a token). Its secret values
(tokens, passwords, client keys and certificates, auth-provider and exec credentials) are
returned for masking; content from a variable is written to a file of mode 0600 that exists only
while kubectl runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError

#: Keys of a kubeconfig ``user`` whose values are credentials.
_SECRET_KEYS = ("token", "password", "client-key-data", "client-certificate-data")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Which cluster a kubeconfig's context points at (recorded in the verdict)."""

    context: str
    cluster: str
    server: str
    namespace: str | None


@dataclasses.dataclass(frozen=True)
class Kubeconfig:
    text: str
    source: str  # "kubeconfig file x.yaml" or "kubeconfig in $NAME": how errors name it
    cluster: Cluster
    secrets: tuple[str, ...]


def _named(items: Any, key: str, name: str, source: str) -> Mapping[str, Any]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and item.get("name") == name and isinstance(item.get(key), Mapping):
            return item[key]  # type: ignore[no-any-return]
    raise InputError(
        f"{source} has no {key} named {name!r}",
        hint=f"check the {key}s list and the context that names it",
    )


def _secrets(user: Mapping[str, Any]) -> list[str]:
    found = [str(user[key]) for key in _SECRET_KEYS if isinstance(user.get(key), (str, int)) and user[key]]
    provider = user.get("auth-provider")
    if isinstance(provider, Mapping) and isinstance(provider.get("config"), Mapping):
        found += [str(v) for v in provider["config"].values() if isinstance(v, str) and v]
    command = user.get("exec")
    if isinstance(command, Mapping) and isinstance(command.get("env"), list):
        found += [str(e["value"]) for e in command["env"] if isinstance(e, Mapping) and e.get("value")]
    return found


def parse_kubeconfig(text: str, *, source: str, context: str | None = None) -> Kubeconfig:
    """Check ``text`` is a kubeconfig whose context names a cluster with a server."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise InputError(
            f"{source} does not parse as YAML{where}: {problem}",
            hint="give the kubeconfig file's content unchanged (kubectl config view --raw --minify)",
        ) from None
    if not isinstance(document, Mapping) or document.get("kind", "Config") != "Config":
        raise InputError(
            f"{source} is not a kubeconfig (a mapping of kind Config with clusters, contexts and users)",
            hint="kubectl config view --raw --minify prints one",
        )
    name = context or document.get("current-context")
    if not isinstance(name, str) or not name:
        raise InputError(f"{source} sets no current-context", hint="pass --context NAME")
    ctx = _named(document.get("contexts"), "context", name, source)
    cluster_name = ctx.get("cluster")
    cluster = _named(document.get("clusters"), "cluster", str(cluster_name), source)
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise InputError(
            f"{source}: cluster {cluster_name!r} has no server address",
            hint="e.g. server: https://10.0.0.1:6443",
        )
    secrets: list[str] = []
    if ctx.get("user") is not None:
        secrets = _secrets(_named(document.get("users"), "user", str(ctx["user"]), source))
    namespace = ctx.get("namespace")
    return Kubeconfig(
        text=text,
        source=source,
        cluster=Cluster(name, str(cluster_name), server, str(namespace) if namespace else None),
        secrets=tuple(secrets),
    )


def read_kubeconfig(
    *, path: str | None, variable: str | None, environ: Mapping[str, str], context: str | None
) -> Kubeconfig:
    """The kubeconfig from the file ``path`` or the variable named ``variable``."""
    if path:
        source = f"kubeconfig file {path}"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"option --kubeconfig: cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
    else:
        assert variable
        source = f"kubeconfig in ${variable}"
        text = environ.get(variable, "")
        if not text.strip():
            raise InputError(
                f"option --kubeconfig-env: ${variable} is empty or not set",
                hint=f"set {variable} from a secret holding the kubeconfig's content",
            )
    return parse_kubeconfig(text, source=source, context=context)


@contextlib.contextmanager
def kubeconfig_path(kube: Kubeconfig, path: str | None) -> Iterator[str]:
    """A file kubectl can read: ``path`` itself, or a 0600 temporary file removed afterwards."""
    if path:
        yield path
        return
    handle, name = tempfile.mkstemp(prefix="mlci-kubeconfig-", suffix=".yaml")  # mode 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(kube.text)
        yield name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
