"""Child process of the Kubernetes benchmark: the fake Kubernetes API server, in a process of
its own as a real API server is (in the benchmark's process its relay would compete with the
client being measured for the interpreter lock).

Usage: ``python _kube_child.py SPEC_JSON`` with SPEC_JSON holding ``kubeconfig`` (the path to
write), ``namespace``, ``pod``, ``container``, ``labels``, ``env`` and ``ports`` (container
port → [host, port]).  Prints ``ready`` once the pod is declared, then serves until its
standard input closes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gocdbackup.testing import FakeKubeAPI


def main() -> None:
    spec = json.loads(sys.argv[1])
    with FakeKubeAPI() as api:
        api.kubeconfig(Path(spec["kubeconfig"]), namespace=spec["namespace"])
        api.add_pod(
            spec["namespace"],
            spec["pod"],
            containers=(spec["container"],),
            labels=spec["labels"],
            env=spec["env"],
            ports={int(p): (str(h), int(n)) for p, (h, n) in spec["ports"].items()},
        )
        print("ready", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
