"""The session's machinery, imported when the plugin wakes (:func:`pytest_codeeval.plugin.activate`).

A pytest process plays one of three roles, and registers the objects of its role only, as
pytest's junitxml and xdist's ``DSession`` do:

========== ======================================= =============================================
role       objects                                  what it does
========== ======================================= =============================================
serial     :class:`Judging`, :class:`Reporting`    collects, generates, judges, reports
worker     :class:`WorkerJudging`                  collects, generates (or asks the generation
                                                   service), judges; its reports go to the
                                                   controller
controller :class:`ControllerReporting`,           collects nothing: starts the generation
           :class:`Services`                       services, reports what the workers judged
========== ======================================= =============================================

All of them share one :class:`Context` (settings, benchmarks, the completion source, the gates,
the progress display), kept in ``config.stash``. A suite that never asks for the plugin never
imports this package nor anything it imports (generation, sandbox client, gates, reports).
"""

from __future__ import annotations

import pytest

from pytest_codeeval import settings
from pytest_codeeval.session.context import Context
from pytest_codeeval.session.judging import ItemJudge, Judging, WorkerJudging
from pytest_codeeval.session.reporting import ControllerReporting, Reporting
from pytest_codeeval.session.services import Services

__all__ = ["Context", "ControllerReporting", "ItemJudge", "Judging", "Reporting", "Services", "WorkerJudging", "start"]


def start(config: pytest.Config, s: settings.Settings) -> Context:
    """The context of this process's role, with the role's objects registered as plugins."""
    role = settings.process_role(config)
    ctx = Context(config, s, role)
    if role == settings.WORKER:
        ctx.judging = WorkerJudging(ctx)
    elif role == settings.CONTROLLER:
        ctx.services = Services(ctx)
        ctx.reporting = ControllerReporting(ctx, ctx.services)
    else:
        ctx.judging = Judging(ctx)
        ctx.reporting = Reporting(ctx)
    config.pluginmanager.register(ctx, "codeeval-session")
    for name, part in (("codeeval-judging", ctx.judging), ("codeeval-reporting", ctx.reporting),
                       ("codeeval-services", ctx.services)):
        if part is not None:
            config.pluginmanager.register(part, name)
    return ctx
