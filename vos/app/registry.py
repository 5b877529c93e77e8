"""The open sessions of the app: a bounded number, the least recently used idle one closed first, each with its
object names and at most one propagation job."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .engine import PALETTE, Clip
from .errors import ApiError
from .jobs import Job

#: Object ids the app hands out (255 is DAVIS' "void" label, read as background).
MAX_OBJECT_ID = 254
#: Finished jobs a session remembers (for polling after the fact).
KEEP_JOBS = 20


class AppSession:
    """One open video: its ``Clip``, the user's names for its objects, its current job, when it was last used."""

    def __init__(self, clip: Clip, source: str):
        self.id = "s" + secrets.token_hex(4)
        self.clip = clip
        self.source = source  #: what was opened (a path under the root, or "upload: <file name>")
        self.names: dict[int, str] = {}
        self.job: Job | None = None  #: the latest job
        self.jobs: dict[str, Job] = {}  #: the latest ``KEEP_JOBS`` jobs by id
        self.last_used = time.monotonic()
        self.lock = threading.Lock()  #: held while checking for a running job and then changing the session

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.active

    def start_job(self, job: Job) -> None:
        """Make ``job`` the session's job (the caller holds ``lock`` and then submits it)."""
        self.require_idle()
        self.job = self.jobs[job.id] = job
        while len(self.jobs) > KEEP_JOBS:
            del self.jobs[next(iter(self.jobs))]

    def get_job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"session {self.id}: no job {job_id!r}")
        return job

    def require_idle(self) -> None:
        if self.busy:
            raise ApiError(409, f"session {self.id}: propagation job {self.job.id} is running; stop it or wait for it "
                                "to finish")

    def sync_objects(self) -> None:
        """Name the objects that arrived in a mask without being added through the API."""
        for object_id in self.clip.objects:
            self.names.setdefault(object_id, f"object {object_id}")

    def add_object(self, name: str | None) -> int:
        used = set(self.names) | set(self.clip.objects)
        free = next((i for i in range(1, MAX_OBJECT_ID + 1) if i not in used), None)
        if free is None:
            raise ApiError(409, f"session {self.id}: all {MAX_OBJECT_ID} object ids are in use; remove an object")
        self.names[free] = (name or "").strip() or f"object {free}"
        return free

    def require_object(self, object_id: int) -> None:
        if object_id not in self.names:
            raise ApiError(404, f"session {self.id}: no object {object_id}; list objects with GET "
                                f"/api/sessions/{self.id}")

    def rename_object(self, object_id: int, name: str) -> None:
        self.require_object(object_id)
        name = " ".join(name.split())
        if not name:
            raise ApiError(422, "an object name cannot be empty")
        self.names[object_id] = name

    def remove_object(self, object_id: int) -> None:
        self.require_object(object_id)
        self.require_idle()
        if object_id in self.clip.objects:
            self.clip.remove_object(object_id)
        del self.names[object_id]

    def remove_keyframe(self, index: int) -> None:
        keyframes = sorted(self.clip.keyframes)
        if index not in keyframes:
            raise ApiError(404, f"session {self.id}: frame {index} has no keyframe (keyframes: {keyframes}); give "
                                "one of those frames")
        self.require_idle()
        self.clip.remove_keyframe(index)

    def objects(self) -> list[dict]:
        return [{"id": i, "name": n, "colour": "#%02x%02x%02x" % tuple(PALETTE[i])}
                for i, n in sorted(self.names.items())]

    def info(self) -> dict:
        clip = self.clip
        h, w = clip.frame_size
        return {"id": self.id, "name": clip.name, "source": self.source, "num_frames": clip.num_frames,
                "width": w, "height": h, "fps": str(clip.fps) if clip.fps else None,
                "fps_float": float(clip.fps) if clip.fps else None, "objects": self.objects(),
                "keyframes": sorted(clip.keyframes), "computed": clip.computed,
                "job": self.job.status() if self.job is not None else None}


class SessionRegistry:
    """Open sessions by id, at most ``max_sessions``; opening one more closes the least recently used idle one."""

    def __init__(self, open_clip: Callable[[Path], Clip], max_sessions: int = 4):
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.open_clip = open_clip
        self.max_sessions = max_sessions
        self._sessions: dict[str, AppSession] = {}
        self._lock = threading.Lock()

    def open(self, path: Path, source: str) -> AppSession:
        clip = self.open_clip(path)  # outside the lock: reading headers can take a moment
        with self._lock:
            while len(self._sessions) >= self.max_sessions:
                idle = [s for s in self._sessions.values() if not s.busy]
                if not idle:
                    raise ApiError(429, f"all {self.max_sessions} sessions are running jobs; wait for one or stop it")
                del self._sessions[min(idle, key=lambda s: s.last_used).id]
            session = AppSession(clip, source)
            self._sessions[session.id] = session
            return session

    def get(self, session_id: str) -> AppSession:
        session = self._sessions.get(session_id)
        if session is None:
            raise ApiError(404, f"no session {session_id!r} (closed, or the app restarted); open the video again")
        session.last_used = time.monotonic()
        return session

    def close(self, session_id: str) -> None:
        session = self.get(session_id)
        if session.job is not None:
            session.job.cancel()
        with self._lock:
            self._sessions.pop(session_id, None)

    def all(self) -> list[AppSession]:
        return list(self._sessions.values())
