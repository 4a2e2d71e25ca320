"""The xdist controller's generation services: a local model is loaded once per model copy in
a service process the workers share, instead of once per worker (see docs/scaling.md). Started
at session start, before xdist starts its workers, which get the addresses in their workerinput
(``pytest_configure_node``); stopped at session end, their counters kept for the report."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

import pytest

from pytest_codeeval import paired
from pytest_codeeval.generation.service import ServiceError, ServiceHost

if TYPE_CHECKING:
    from pytest_codeeval.session.context import Context


class Services:
    """The controller's generation services by role ("model", "baseline"), one per model copy
    (registered as ``codeeval-services``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.hosts: dict[str, list[ServiceHost]] = {}
        self.stats: dict[str, list[dict[str, Any] | None]] = {}  # each host's counters, read at the end

    def start(self) -> None:
        """A service per model copy for every local model the session generates with (none for
        replayed files, references or endpoints)."""
        copies = self.ctx.settings.model_copies
        devices = cuda_devices()
        copies = copies if copies is not None else max(1, len(devices))
        if copies == 0:
            return
        sources = {"model": self.ctx.candidate}
        if isinstance(self.ctx.gates.baseline, paired.ModelBaseline):
            sources["baseline"] = self.ctx.gates.baseline.source
        try:
            for role, source in sources.items():
                if getattr(source, "local_model", False):
                    self.hosts[role] = [ServiceHost.start(devices[i] if len(devices) >= copies else None)
                                        for i in range(copies)]
            self.ctx.progress.watch([host for hosts in self.hosts.values() for host in hosts])
        except ServiceError as e:
            self.stop()
            raise pytest.UsageError(str(e)) from None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """(xdist) Tell each worker which generation service to use: worker i shares copy i % copies."""
        index = int(str(node.gateway.id).lstrip("gw") or 0)
        node.workerinput["codeeval_services"] = {
            role: {"address": hosts[index % len(hosts)].address, "key": hosts[index % len(hosts)].authkey.hex(),
                   "share": index % len(hosts), "copies": len(hosts), "host": socket.gethostname()}
            for role, hosts in self.hosts.items()
        }

    def stop(self) -> None:
        """Read each service's counters (for the results file), then stop it."""
        for role, hosts in self.hosts.items():
            self.stats[role] = [h.stats() for h in hosts]
            for h in hosts:
                h.stop()
        self.hosts = {}

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop()  # a session that ended before sessionfinish


def cuda_devices() -> list[str]:
    """The CUDA devices this process may use, found without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in (v.strip() for v in visible.split(",")) if d and not d.startswith("-")]
    try:
        return [str(i) for i in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        return []


def service_totals(stats: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The generation block of the results file from the services' counters."""
    alive = [s for s in stats if s is not None]
    tokens = sum(s["tokens"] for s in alive)
    seconds = max((s["seconds"] for s in alive), default=0.0)  # the copies decode side by side
    return {
        "samples_generated": sum(s["samples_generated"] for s in alive),
        "tokens": tokens, "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 2) if seconds else 0.0,
        "model_loads": sum(s["model_loads"] for s in alive),
        "model_load_seconds": max((s["load_seconds"] for s in alive if s["load_seconds"] is not None), default=None),
        "service": alive,
    }
