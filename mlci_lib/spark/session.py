"""Starting (or reusing) the Spark session the ``--engine spark`` commands run on.

One session per process: a JVM costs seconds and hundreds of MB, so a library user (or a test
session) that already has an active session gets it back, with mlci's settings applied where
Spark allows them at run time. ``--spark-master`` takes what ``spark-submit --master`` takes, or a
Spark Connect URL (``sc://host:port``), so the same command runs on a laptop, in CI or against a
cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, ServiceError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Masters Spark itself accepts; anything else is refused before a JVM starts.
_MASTER = re.compile(
    r"local(\[(\*|[1-9][0-9]{0,3})(,[0-9]{1,4})?\])?"
    r"|spark://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(,[A-Za-z0-9.\-]+(:[0-9]{1,5})?)*"
    r"|yarn|k8s://https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._\-/]*)?"
)
_CONNECT = re.compile(
    r"sc://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/;[A-Za-z0-9_.\-]+=[^;\s]*(;[A-Za-z0-9_.\-]+=[^;\s]*)*)?"
)
_CONF_KEY = re.compile(r"spark\.[A-Za-z0-9_.\-]+")
#: Spark Connect's port when the URL names none.
CONNECT_DEFAULT_PORT = 15002
#: Seconds to wait for a Spark Connect server's port before giving up: the client itself retries
#: an unreachable server for more than ten minutes, which in CI is a hung job, not an error.
CONNECT_PROBE_SECONDS = 10.0

#: What a local session needs on a CI runner: no UI port, loopback only, UTC, Arrow transfers,
#: and few shuffle partitions (the default 200 turns a small aggregation into 200 tasks).
_LOCAL_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "8",
    # A progress bar on stderr is noise in a CI log (and breaks the one-line output of errors).
    "spark.ui.showConsoleProgress": "false",
}
_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


@dataclass(frozen=True)
class SparkSettings:
    """Where the session runs: a master (``local[*]`` by default) or a Spark Connect URL."""

    master: str = "local[*]"
    conf: Mapping[str, str] = field(default_factory=dict)
    app_name: str = "mlci"

    @property
    def is_connect(self) -> bool:
        return self.master.startswith("sc://")

    @property
    def is_local(self) -> bool:
        return self.master.startswith("local")

    @property
    def connect_address(self) -> tuple[str, int]:
        """The host and port of a Spark Connect URL (15002 when it names no port)."""
        host_port = self.master[len("sc://") :].split("/", 1)[0]
        host, _, port = host_port.partition(":")
        return host, int(port) if port else CONNECT_DEFAULT_PORT

    @classmethod
    def from_options(cls, master: str | None, conf: Iterable[str] = ()) -> SparkSettings:
        """Settings from ``--spark-master`` and repeated ``--spark-conf KEY=VALUE`` options."""
        chosen = master or os.environ.get("MLCI_SPARK_MASTER") or "local[*]"
        if not (_MASTER.fullmatch(chosen) or _CONNECT.fullmatch(chosen)):
            raise UsageError(
                f"--spark-master {chosen!r} is not a Spark master",
                hint="use local[*], local[N], spark://host:port, yarn, k8s://https://host:port "
                "or a Spark Connect URL sc://host:port",
            )
        pairs: dict[str, str] = {}
        for item in conf:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not _CONF_KEY.fullmatch(key):
                raise UsageError(
                    f"--spark-conf {item!r} is not KEY=VALUE with a spark.* key",
                    hint="for example --spark-conf spark.executor.memory=4g",
                )
            if any(ch in value for ch in "\r\n\x00"):
                raise UsageError(
                    f"--spark-conf {key}: the value holds a line break or NUL", hint="give one line"
                )
            pairs[key] = value
        return cls(master=chosen, conf=pairs)

    def effective_conf(self) -> dict[str, str]:
        """mlci's defaults, overridden by what the user set."""
        merged = dict(_DEFAULTS)
        if self.is_local:
            merged.update(_LOCAL_DEFAULTS)
            # Local Python workers run this interpreter, with its packages (pyarrow, the model's
            # framework), not whatever python3 comes first on PATH.
            merged["spark.pyspark.python"] = sys.executable
        merged.update(self.conf)
        return merged


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise InputError(
            "--engine spark needs pyspark, which is not installed",
            hint="pip install 'mlci[spark]' (or pyspark itself), or use --engine pandas",
        ) from None


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return
    if shutil.which("java"):
        return
    raise InputError(
        "--engine spark with a local or cluster master needs Java (no java on PATH, JAVA_HOME unset)",
        hint="install Java 17 (e.g. apt-get install openjdk-17-jre-headless), or give a Spark Connect URL "
        "--spark-master sc://host:port",
    )


def spark_session(settings: SparkSettings | None = None) -> SparkSession:
    """The process's Spark session for these settings: the active one when there is one."""
    settings = settings or SparkSettings()
    _require_pyspark()
    from pyspark.sql import SparkSession

    conf = settings.effective_conf()
    if settings.is_connect:
        _require_connect_client()
        _probe_connect(settings)
        builder = SparkSession.builder.remote(settings.master)
    else:
        active = SparkSession.getActiveSession()
        if active is not None:
            return _reuse(active, settings)
        _require_java()
        if settings.is_local:
            # The Python workers of a local session start from PYSPARK_PYTHON (else python3 on
            # PATH, which may lack pyarrow and the model's framework): this interpreter.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(settings.master)
    builder = builder.appName(settings.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            session = builder.getOrCreate()
        except Exception as error:  # py4j, PySparkRuntimeError, grpc: all mean "no session"
            raise ServiceError(
                f"Spark did not start with --spark-master {settings.master}: {_first_line(error)}",
                hint="check the master URL, that Java 17 is installed, and --spark-conf values",
            ) from None
    if settings.is_connect:
        _check_connect_conf(session, settings, [str(w.message) for w in said])
    for warning in said:  # pass on what was said, once the settings are known to hold
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return session


def _check_connect_conf(session: SparkSession, settings: SparkSettings, said: list[str]) -> None:
    # A Spark Connect client sets its options silently: a setting the server will not take (a
    # static one: memory, cores, jars) is dropped with a warning at most. Read each one back.
    for key, value in settings.conf.items():
        try:
            found = session.conf.get(key, None)
        except Exception:
            found = None
        if found != value:
            why = next((" ".join(text.split())[:200] for text in said if key in text), None)
            raise UsageError(
                f"--spark-conf {key}={value} did not take on the Spark Connect server "
                f"{settings.master} (it has {found!r}{'; ' + why if why else ''})",
                hint="static settings (memory, cores, jars) belong where the server starts; "
                "a client sets only run-time ones (spark.sql.*)",
            )


#: What to do when a session stopped under a job (the usual cause: the driver ran out of memory).
STOPPED_HINT = (
    "give Spark more memory (--spark-conf spark.driver.memory=4g, or the executors'), "
    "or read the driver's log"
)


def session_stopped(session: Any = None) -> bool:
    """Whether the session can no longer run a job: its SparkContext stopped, or its JVM is gone.

    A driver that runs out of memory stops its SparkContext in the middle of whatever runs; every
    job after that fails, each with an error that no longer names the cause. With no session, the
    process's active SparkContext is asked (none, or Spark Connect's: nothing to tell, False).
    """
    if session is not None and is_connect_session(session):
        return bool(getattr(session, "is_stopped", False))
    try:
        if session is not None:
            context = session.sparkContext
        else:
            from pyspark import SparkContext

            context = SparkContext._active_spark_context
            if context is None:
                return False
        java = context._jsc
        return java is None or bool(java.sc().isStopped())
    except Exception:  # the JVM itself is gone: py4j cannot reach it
        return True


def is_connect_session(session: object) -> bool:
    """Whether ``session`` is a Spark Connect session (no SparkContext, JVM or RDDs behind it)."""
    return type(session).__module__.startswith("pyspark.sql.connect")


def _require_connect_client() -> None:
    missing = []
    for module in ("grpc", "grpc_status", "google.rpc", "zstandard", "pyarrow", "pandas"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise InputError(
            f"--spark-master sc://... needs Spark Connect's Python client, which is not installed "
            f"(missing: {', '.join(missing)})",
            hint="pip install 'pyspark[connect]'",
        )


def _probe_connect(settings: SparkSettings) -> None:
    host, port = settings.connect_address
    try:
        with socket.create_connection((host, port), timeout=CONNECT_PROBE_SECONDS):
            pass
    except OSError as error:
        reason = str(error.strerror or type(error).__name__)
        if isinstance(error, TimeoutError):
            reason = f"no answer within {CONNECT_PROBE_SECONDS:g} s"
        raise ServiceError(
            f"--spark-master {settings.master}: no Spark Connect server answers at {host}:{port} ({reason})",
            hint="start one (sbin/start-connect-server.sh in the pyspark package or a Spark release) "
            "or check the host and port",
        ) from None


def _reuse(active: SparkSession, settings: SparkSettings) -> SparkSession:
    # Run-time settings apply to the existing session; static ones (the master, memory) cannot
    # change without a new JVM, so a different master is an error, not a silent other cluster.
    if is_connect_session(active):
        # SPARK_REMOTE made the active session a Spark Connect one, which has no SparkContext.
        running: str | None = "a Spark Connect server"
        differs = settings.master != "local[*]"
    else:
        running = active.sparkContext.master
        differs = settings.master != "local[*]" and running != settings.master
    if differs:
        raise UsageError(
            f"--spark-master {settings.master} differs from this process's running Spark session ({running})",
            hint="stop the running session first, or leave --spark-master unset to use it",
        )
    for key, value in settings.conf.items():
        try:
            active.conf.set(key, value)
        except Exception as error:
            raise UsageError(
                f"--spark-conf {key} cannot change on a running Spark session: {_first_line(error)}",
                hint="set it when the session starts (spark-defaults.conf, or a new process)",
            ) from None
    return active


def _first_line(error: BaseException) -> str:
    details = getattr(error, "details", None)
    if callable(details):
        # A gRPC error (Spark Connect): its string is a multi-line repr; the details are the message.
        try:
            found = details()
        except Exception:
            found = None
        if isinstance(found, str) and found.strip():
            code = getattr(error, "code", None)
            name = getattr(code(), "name", "") if callable(code) else ""
            return f"{name}: {found.strip().splitlines()[0]}"[:300].lstrip(": ")
    text = str(error).strip() or type(error).__name__
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return type(error).__name__
