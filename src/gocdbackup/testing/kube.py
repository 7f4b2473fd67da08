"""A small Kubernetes API server for tests: the real ``kubernetes`` client talks to it over HTTP
(a kubeconfig it writes, a bearer token), and it answers as an API server does for what
gocdbackup uses: namespaced objects of the core and named API groups (get, list with label
selectors and pages, create, replace with resource versions, merge patch, delete), ``Status``
errors with their codes, and RBAC denials (403) set per verb and resource.  No cluster, no
container engine: objects are JSON documents held in memory."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import copy
import json
import socket
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from gocdbackup.testing.kube_exec import PodExec
from gocdbackup.testing.kube_objects import KINDS, VERBS, group_of, merge, route, selected, status
from gocdbackup.testing.kube_snapshots import PLURAL as SNAPSHOTS
from gocdbackup.testing.kube_snapshots import snapshot_created
from gocdbackup.testing.kube_workloads import WORKLOADS, rescale, scale_of, workload

_IMAGE = "postgres:16-alpine"


class FakeKubeAPI:
    """A local Kubernetes API server (start it with ``with FakeKubeAPI() as api:``).

    ``api.kubeconfig(path)`` writes a kubeconfig for it; ``api.put(obj)`` and ``api.get(...)``
    seed and read objects directly; ``api.deny(verb, resource)`` answers that verb on that
    resource with 403 Forbidden, as RBAC would; ``api.requests`` records ``(method, path)``
    of every call.  Secrets written with ``stringData`` are stored base64-encoded in ``data``,
    as a real server stores them."""

    def __init__(
        self,
        *,
        token: str = "fake-token",  # noqa: S107 - a test server's bearer token
        page_limit: int | None = None,
    ) -> None:
        self.token = token
        #: the most items a list answers with at once (None: as many as asked for)
        self.page_limit = page_limit
        self.requests: list[tuple[str, str]] = []
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._denied: set[tuple[str, str]] = set()
        self._version = 0
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: what ``exec`` runs and ``portforward`` reaches for each pod (see :meth:`add_pod`)
        self.pods = PodExec()
        #: seconds a workload's pods take to follow a new scale; workloads whose pods never do
        self.pod_delay = 0.2
        self.stuck: set[tuple[str, str]] = set()
        #: seconds the snapshot controller takes; the error it reports instead (None: none)
        self.snapshot_delay = 0.2
        self.snapshot_error: str | None = None

    def __repr__(self) -> str:
        return f"FakeKubeAPI({self.url!r})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> FakeKubeAPI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            for sub in ("exec", "portforward"):
                path = f"/api/v1/namespaces/{{ns}}/pods/{{pod}}/{sub}"
                app.router.add_route("GET", path, self._pod_stream)
            app.router.add_route("*", "/{path:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fake-kube-api", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None:
            return
        if runner is not None:
            # connections a client left open (a stream never read to its end) are dropped
            with contextlib.suppress(TimeoutError, concurrent.futures.TimeoutError):
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if not loop.is_running():
            loop.close()
        self._loop = None

    def kubeconfig(self, path: Path, *, namespace: str = "default", context: str = "fake") -> Path:
        """Write a kubeconfig whose context ``context`` (the current one) reaches this server
        with its bearer token, in ``namespace``."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": context,
        }
        path.write_text(json.dumps(doc))
        return path

    # -- direct access ---------------------------------------------------------------------

    def put(self, obj: dict[str, Any], *, resource: str | None = None) -> dict[str, Any]:
        """Store ``obj`` (created or replaced, as is), under ``resource`` (default: its kind's
        plural)."""
        meta = obj.setdefault("metadata", {})
        plural = resource or next(p for p, k in KINDS.items() if k == obj["kind"])
        key = (group_of(obj.get("apiVersion", "v1")), meta.get("namespace", "default"), plural)
        with self._lock:
            return self._store(key, meta["name"], obj)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            for (_, ns, plural, n), obj in self._objects.items():
                if (plural, ns, n) == (resource, namespace, name):
                    return copy.deepcopy(obj)
        return None

    def names(self, resource: str, namespace: str) -> list[str]:
        with self._lock:
            return sorted(n for (_, ns, p, n) in self._objects if (p, ns) == (resource, namespace))

    def delete(self, resource: str, namespace: str, name: str) -> None:
        with self._lock:
            for key in [k for k in self._objects if k[1:] == (namespace, resource, name)]:
                del self._objects[key]

    def add_pod(
        self,
        namespace: str,
        name: str,
        *,
        containers: tuple[str, ...] = ("main",),
        labels: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        ports: dict[int, tuple[str, int]] | None = None,
        ready: bool = True,
    ) -> dict[str, Any]:
        """A running pod whose ``exec`` runs commands here with ``env`` and whose
        ``portforward`` reaches ``ports`` (container port → local host and port)."""
        self.pods.env[(namespace, name)] = dict(env or {})
        self.pods.ports[(namespace, name)] = dict(ports or {})
        statuses: list[dict[str, Any]] = [
            {
                "name": c,
                "ready": ready,
                "started": ready,
                "image": _IMAGE,
                "imageID": "docker.io/library/postgres@sha256:" + "0" * 64,
                "restartCount": 0,
                "state": {"running": {}} if ready else {"waiting": {"reason": "ContainerCreating"}},
            }
            for c in containers
        ]
        return self.put(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"namespace": namespace, "name": name, "labels": labels or {}},
                "spec": {
                    "containers": [{"name": c, "image": "postgres:16-alpine"} for c in containers]
                },
                "status": {
                    "phase": "Running" if ready else "Pending",
                    "containerStatuses": statuses,
                },
            }
        )

    def add_workload(
        self, kind: str, namespace: str, name: str, *, replicas: int, labels: dict[str, str]
    ) -> dict[str, Any]:
        """A Deployment or StatefulSet with ``replicas`` running pods labelled ``labels``."""
        for n in range(replicas):
            self.add_pod(namespace, f"{name}-{n}", labels=labels)
        return self.put(workload(kind, namespace, name, replicas, labels))

    def deny(self, verb: str, resource: str) -> None:
        """Answer ``verb`` (get, list, create, update, patch, delete) on ``resource`` (or a
        subresource: ``deployments/scale``, ``pods/exec``) with 403."""
        self._denied.add((verb, resource))

    @staticmethod
    def secret(namespace: str, name: str, data: dict[str, bytes], **meta: Any) -> dict[str, Any]:
        """A Secret object holding ``data`` (base64-encoded, as stored)."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"namespace": namespace, "name": name, **meta},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }

    # -- the API ---------------------------------------------------------------------------

    def _store(self, key: tuple[str, str, str], name: str, obj: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        meta = obj["metadata"]
        meta["name"] = name
        meta["namespace"] = key[1]
        meta["resourceVersion"] = str(self._version)
        meta.setdefault("uid", f"uid-{self._version}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        obj.setdefault("kind", KINDS.get(key[2], ""))
        if "stringData" in obj:
            data = obj.setdefault("data", {}) or {}
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
        self._objects[(*key, name)] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    async def _pod_stream(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        ns, name = request.match_info["ns"], request.match_info["pod"]
        sub = request.path.rsplit("/", 1)[1]
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        if ("create", f"pods/{sub}") in self._denied:
            return status(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: cannot create resource "pods/{sub}" in namespace '
                f'"{ns}"',
            )
        pod = self.get("pods", ns, name)
        if pod is None:
            return status(404, "NotFound", f'pods "{name}" not found', name=name, kind="pods")
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = request.query.get("container") or names[0]
        if container not in names:
            return status(400, "BadRequest", f"container {container} is not valid for pod {name}")
        ready = {c["name"]: c.get("ready") for c in pod["status"].get("containerStatuses", [])}
        if not ready.get(container):
            return status(400, "BadRequest", f"container {container} in pod {name} is not running")
        if sub == "exec":
            return await self.pods.run(request, ns, name)
        return await self.pods.forward(request, ns, name)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        found = route(request.path)
        if found is None:
            return status(404, "NotFound", f"the server could not find {request.path}")
        group, namespace, resource, name, sub = found
        verb = VERBS.get(request.method, "")
        if verb == "get" and name is None:
            verb = "list"
        if (verb, f"{resource}/{sub}" if sub else resource) in self._denied:
            return status(
                403,
                "Forbidden",
                f'{resource} is forbidden: cannot {verb} resource "{resource}" in namespace '
                f'"{namespace}"',
                kind=resource,
            )
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT", "PATCH"):
            body = json.loads(await request.read() or b"{}")
        with self._lock:
            if sub == "scale" and resource in WORKLOADS.values() and name is not None:
                return self._scale(request, namespace, resource, name, body)
            if sub:
                return status(404, "NotFound", f"the server could not find {request.path}")
            return self._answer(request, (group, namespace, resource), name, body)

    def _scale(
        self, request: web.Request, namespace: str, resource: str, name: str, body: dict[str, Any]
    ) -> web.Response:
        current = self.get(resource, namespace, name)
        if current is None:
            return status(404, "NotFound", f'{resource} "{name}" not found', name=name)
        if request.method in ("PUT", "PATCH"):
            replicas = int((body.get("spec") or {}).get("replicas", 0))
            current = rescale(self, current, replicas)
        return web.json_response(scale_of(current))

    def _answer(
        self,
        request: web.Request,
        key: tuple[str, str, str],
        name: str | None,
        body: dict[str, Any],
    ) -> web.Response:
        resource = key[2]
        kind = KINDS.get(resource, resource)
        if name is None and request.method == "GET":
            return web.json_response(self._list(key, request.query))
        if name is None and request.method == "POST":
            new = body.get("metadata", {}).get("name", "")
            if (*key, new) in self._objects:
                return status(409, "AlreadyExists", f'{resource} "{new}" already exists')
            created = self._store(key, new, body)
            if key[2] == SNAPSHOTS:
                snapshot_created(self, created)
            return web.json_response(created, status=201)
        current = self._objects.get((*key, name or ""))
        if current is None:
            return status(404, "NotFound", f'{resource} "{name}" not found', name=name, kind=kind)
        assert name is not None
        if request.method == "GET":
            return web.json_response(copy.deepcopy(current))
        if request.method == "DELETE":
            del self._objects[(*key, name)]
            return web.json_response({"kind": "Status", "status": "Success", "code": 200})
        if request.method == "PUT":
            version = body.get("metadata", {}).get("resourceVersion")
            if version and version != current["metadata"]["resourceVersion"]:
                return status(409, "Conflict", f'the object has been modified: {resource} "{name}"')
            return web.json_response(self._store(key, name, body))
        if request.method == "PATCH":
            return web.json_response(self._store(key, name, merge(copy.deepcopy(current), body)))
        return status(405, "MethodNotAllowed", f"{request.method} is not allowed")

    def _list(self, key: tuple[str, str, str], query: Any) -> dict[str, Any]:
        selector = query.get("labelSelector", "")
        after = query.get("continue", "")
        limit = int(query.get("limit", 0) or 0) or None
        if self.page_limit is not None:
            limit = min(limit or self.page_limit, self.page_limit)
        names = sorted(n for (*k, n) in self._objects if tuple(k) == key and n > after)
        items = [
            copy.deepcopy(self._objects[(*key, n)])
            for n in names
            if selected(self._objects[(*key, n)], selector)
        ]
        more = limit is not None and len(items) > limit
        items = items[:limit] if limit is not None else items
        meta: dict[str, Any] = {"resourceVersion": str(self._version)}
        if more:
            meta["continue"] = items[-1]["metadata"]["name"]
        kind = KINDS.get(key[2], key[2])
        return {"kind": f"{kind}List", "apiVersion": "v1", "metadata": meta, "items": items}
