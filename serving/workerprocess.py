"""Decode worker processes started from a forkserver without the parent's main module."""

from __future__ import annotations

import io
import os
from multiprocessing import context as mp_context
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from typing import Any


class _LeanPopen(popen_forkserver.Popen):
    """A forkserver start that does not re-run the parent's ``__main__`` in the worker.

    multiprocessing imports the parent's main script again in every child (for targets defined
    there). The worker's target lives in `serving.decodeworker`, so that import is pure cost: the
    ``harmscan`` CLI (~0.5 s and ~40 MB per worker) or a script importing torch (seconds on a busy
    host: the first decodes of a new worker then overran the wall-clock watchdog). This is CPython's
    ``popen_forkserver.Popen._launch`` (3.11, 3.12) with the main-module entries left out.
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = {
            key: value
            for key, value in spawn.get_preparation_data(process_obj._name).items()
            if key not in ("init_main_from_path", "init_main_from_name")
        }
        buf = io.BytesIO()
        mp_context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            mp_context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        parent_w = os.dup(w)  # the child's sentinel of its parent, as in CPython
        close_fds = util.close_fds  # type: ignore[attr-defined]
        self.finalizer = util.Finalize(self, close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class WorkerProcess(mp_context.ForkServerProcess):
    """A forkserver process started without the parent's main module (see `_LeanPopen`)."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _LeanPopen(process_obj)
