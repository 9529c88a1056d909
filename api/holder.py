"""The served index build and its chat service: loaded in the background, swapped atomically on reload."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from index.errors import IndexNotReady, KetLuanError
from index.layout import CURRENT
from index.search import SearchIndex, open_index
from index.settings import IndexSettings

log = logging.getLogger(__name__)

Status = Literal["loading", "ready", "failed"]


@dataclass(frozen=True)
class Snapshot:
    """One loaded build and the service answering from it; requests keep the one they started with."""

    index: SearchIndex
    service: Any  # bot.service.ChatService
    build: Path
    loaded_at: float
    sizes: tuple[tuple[str, int], ...] = ()  # (name, size) of every file its manifest lists

    def damage(self) -> str | None:
        """Why the build's files no longer match their manifest (truncated, removed), or None. One stat a
        file before every use: reading a memory-mapped file past its new end kills the process (SIGBUS)."""
        folder = f"{self.build}{os.sep}"
        for name, size in self.sizes:
            try:
                now = os.stat(folder + name).st_size
            except OSError:
                return f"index build {self.build.name} is damaged: {name} is missing"
            if now != size:
                return f"index build {self.build.name} is damaged: {name} has {now} bytes, its manifest says {size}"
        return None


class IndexHolder:
    """Serves the current index build; notices a new `current` link (a cheap readlink, at most once per
    `watch_interval` seconds) and loads it in a background thread while requests keep using the old one."""

    def __init__(
        self,
        settings: IndexSettings,
        make_service: Callable[[SearchIndex], Any],
        *,
        watch_interval: float = 1.0,
        opener: Callable[..., SearchIndex] = open_index,
        on_swap: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.settings = settings
        self.make_service = make_service
        self.watch_interval = watch_interval
        self._open = opener
        self._on_swap = on_swap
        self._snapshot: Snapshot | None = None
        self._status: Status = "loading"
        self._error: str | None = "index is loading"
        self.reload_error: str | None = None  # why the newest build could not replace the served one
        self._lock = threading.Lock()  # one load at a time
        self._reloading = False
        self._last_check = 0.0
        self._seen_target: str | None = None
        self._thread: threading.Thread | None = None

    # --- state ----------------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        return self._status

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def current(self) -> Snapshot:
        """The snapshot to answer from, its files checked against its manifest first; a damaged build is
        dropped for the last whole one (IndexNotReady with the reason when there is none)."""
        snap = self._loaded()
        if (damage := snap.damage()) is not None:
            return self._replace_damaged(snap, damage)
        return snap

    def current_if_whole(self) -> Snapshot | None:
        """`current()` when that needs no load: None when the served build is damaged (then call `current()`
        off the event loop); IndexNotReady as `current()`."""
        snap = self._loaded()
        return snap if snap.damage() is None else None

    def _loaded(self) -> Snapshot:
        self.maybe_reload()
        snap = self._snapshot
        if snap is None:
            raise IndexNotReady(self._error or "index is loading")
        return snap

    # --- loading --------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Load the index in a daemon thread, so the server answers /healthz and /readyz meanwhile."""
        self._thread = threading.Thread(target=self._load_quietly, name="ketluan-index-load", daemon=True)
        self._thread.start()
        return self._thread

    def load(self) -> bool:
        """Load the index now, in this thread; False (reason logged, /readyz reports it) when it fails."""
        self._load_quietly()
        return self._snapshot is not None

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._snapshot is not None

    def install(self, index: SearchIndex) -> Snapshot:
        """Serve an index that is already loaded (the CLI built it before starting the server)."""
        with self._lock:
            return self._swap(index)

    def reload(self) -> Snapshot:
        """Load the build `current` points at now and swap to it; on failure keep serving the old one."""
        with self._lock:
            self._seen_target = self._link_target()
            old = self._snapshot
            try:
                embedder = old.index.embedder if old is not None else None
                index = self._open(self.settings, embedder)
            except KetLuanError as exc:
                self._failed(old, exc.message)
                raise
            except Exception as exc:
                message = f"index could not be loaded ({exc.__class__.__name__}: {exc})"
                log.exception("index load crashed")
                self._failed(old, message)
                raise IndexNotReady(message) from exc
            self.reload_error = None
            return self._swap(index)

    def _replace_damaged(self, snap: Snapshot, damage: str) -> Snapshot:
        """Stop serving a build whose files changed under it and load what `current` offers now (the build
        layout falls back to the newest whole build); with none, refuse until a rebuild."""
        with self._lock:
            now = self._snapshot
            if now is not None and now is not snap:  # another request replaced it meanwhile
                return now
            log.error("%s; it is no longer served", damage)
            try:
                index = self._open(self.settings, snap.index.embedder)
            except Exception as exc:
                if not isinstance(exc, KetLuanError):
                    log.exception("index load crashed")
                why = exc.message if isinstance(exc, KetLuanError) else f"{exc.__class__.__name__}: {exc}"
                self._snapshot = None
                self._failed(None, f"{damage}; no whole build to serve instead ({why})")
                raise IndexNotReady(self._error or damage) from exc
            self.reload_error = damage
            return self._swap(index)

    def _failed(self, old: Snapshot | None, message: str) -> None:
        if old is None:
            self._status, self._error = "failed", message
            log.error("index not loaded: %s", message)
        else:
            self.reload_error = message
            log.error("new index build not loaded, still serving %s: %s", old.build.name, message)

    def maybe_reload(self) -> None:
        """Start a background reload when `current` points somewhere new; cheap enough for every request."""
        now = time.monotonic()
        if now - self._last_check < self.watch_interval or self._reloading:
            return
        self._last_check = now
        target = self._link_target()
        if target == self._seen_target or target is None:
            return
        self._reloading = True
        log.info("index build changed to %s; reloading in the background", target)
        threading.Thread(target=self._reload_in_background, name="ketluan-index-reload", daemon=True).start()

    def _swap(self, index: SearchIndex) -> Snapshot:
        service = self.make_service(index)
        sizes = tuple((name, entry.size) for name, entry in index.manifest.files.items())
        snap = Snapshot(index=index, service=service, build=index.build, loaded_at=time.time(), sizes=sizes)
        self._snapshot = snap  # one reference assignment: readers see the old snapshot or the new one
        self._status, self._error = "ready", None
        if self._seen_target is None:
            self._seen_target = self._link_target()
        if self._on_swap is not None:
            self._on_swap(snap)
        log.info("serving index build %s (%d passages)", index.build.name, len(index.passages))
        return snap

    def _load_quietly(self) -> None:
        with contextlib.suppress(KetLuanError):  # already logged; /readyz reports the reason
            self.reload()

    def _reload_in_background(self) -> None:
        try:
            self._load_quietly()
        finally:
            self._reloading = False

    def _link_target(self) -> str | None:
        try:
            return os.readlink(self.settings.index_dir / CURRENT)
        except OSError:
            return None
