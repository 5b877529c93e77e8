"""The HTTP API and the page: ``create_app(predictor, settings)`` returns the FastAPI application.

Every error is a 4xx (or, for a bug, 500) JSON ``{"detail": "<one line>"}``, never a traceback. Handlers that touch
the model or the disk run in the framework's thread pool; propagation runs on the job runner's worker thread.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor

from .engine import (CLEANUP_OPTIONS, DIRECTIONS, EXPORT_FORMATS, EXPORT_OPTIONS, PALETTE, Clip, PropagationConfig,
                     decode_mask_png, decode_mask_rle)
from .errors import ApiError
from .jobs import FINISHED, Job, JobRunner
from .paths import VIDEO_SUFFIXES, list_videos, resolve_inside
from .registry import AppSession, SessionRegistry

log = logging.getLogger("seggpt-vos.app")
STATIC = Path(__file__).parent / "static"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_MASK_BYTES = 64 << 20
KEEP_ALIVE_S = 15.0  #: a comment line on an idle event stream this often (and a check that the client is still there)


@dataclass(frozen=True)
class AppSettings:
    """Server settings: ``root`` (the only folder the API reads videos from and exports to), the session bound, the
    upload limit, the JPEG quality of served frames and the propagation settings."""

    root: Path
    max_sessions: int = 4
    max_upload_bytes: int = 2 << 30
    jpeg_quality: int = 90
    frame_cache: int = 256  #: encoded frames kept in memory (all sessions)
    propagation: PropagationConfig = field(default_factory=PropagationConfig)


class OpenRequest(BaseModel):
    path: str = Field(description="a video file or frame folder, relative to the app's root folder")


class ObjectRequest(BaseModel):
    name: str | None = Field(None, description="display name (default 'object <id>')")


class RenameRequest(BaseModel):
    name: str


class PropagateRequest(BaseModel):
    direction: Literal["forward", "backward", "both"] = "both"
    start: int | None = Field(None, alias="from", description="a frame whose current mask becomes a keyframe to "
                                                              "track from (default: the keyframe edited last)")


class ExportRequest(BaseModel):
    format: str = Field(description="one of GET /api/info 'formats'")
    folder: str | None = Field(None, description="a folder relative to the app's root to write into; without it the "
                                                  "export is returned as a zip download")
    options: dict = Field(default_factory=dict, description="start_number (0, 1, 1001), fps (for frame folders, "
                                                             "e.g. '30000/1001'), alpha_combined, content ('matte' or "
                                                             "'cutout', alpha videos), overwrite; clean-up in pixels: "
                                                             "fill_holes, min_area, grow, feather")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _video_signature_ok(head: bytes) -> bool:
    """MP4/MOV (``ftyp`` box), Matroska/WebM (EBML), AVI (RIFF ... AVI)."""
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or (head[:4] == b"RIFF" and head[8:11] == b"AVI")


async def _read_body(request: Request, limit: int, what: str, sink=None) -> bytes:
    """The request body (into ``sink`` when given, else returned), refused with 413 beyond ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"{what} is {int(declared) >> 20} MiB; the limit is {limit >> 20} MiB")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"{what} is over the limit of {limit >> 20} MiB")
        if sink is not None:
            sink.write(chunk)
        else:
            chunks.append(chunk)
    return b"".join(chunks)


def create_app(predictor: SegGPTPredictor, settings: AppSettings) -> FastAPI:
    root = settings.root.resolve()
    if not root.is_dir():
        raise InputError(f"{settings.root}: --root must be an existing folder")
    registry = SessionRegistry(lambda path: Clip(predictor, path, settings.propagation), settings.max_sessions)
    runner = JobRunner()
    uploads = Path(tempfile.mkdtemp(prefix="seggpt-vos-uploads-"))
    frames: OrderedDict[tuple[str, int], bytes] = OrderedDict()  #: (session, index) -> JPEG, least recent first
    frames_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        runner.shutdown([s.job for s in registry.all() if s.job is not None])
        shutil.rmtree(uploads, ignore_errors=True)

    app = FastAPI(title="seggpt-vos", version="0.1.0", lifespan=lifespan,
                  description="Track objects through videos with SegGPT: open a video, draw masks on keyframes, "
                              "propagate, correct, export. Errors are JSON {\"detail\": \"one line\"}.")
    app.state.registry, app.state.runner, app.state.settings = registry, runner, settings

    # --- errors: one line of JSON each
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    @app.exception_handler(InputError)
    async def input_error(request: Request, error: InputError):
        """400; paths inside the root are given relative to it (the server's folders stay private)."""
        return JSONResponse({"detail": one_line(str(error).replace(f"{root}{os.sep}", ""))}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'request'}: {e.get('msg')}"
                 for e in error.errors()]
        return JSONResponse({"detail": one_line("; ".join(parts))}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse({"detail": one_line(error.detail)}, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception):
        log.exception("request %s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": one_line(f"internal error: {type(error).__name__}: {error}")}, status_code=500)

    # --- the page
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    # --- what the server offers
    @app.get("/api/info", tags=["app"])
    def info() -> dict:
        return {"root": root.name, "formats": {k: v[0] for k, v in EXPORT_FORMATS.items()},
                "export_options": [*EXPORT_OPTIONS, *CLEANUP_OPTIONS],
                "directions": list(DIRECTIONS), "max_upload_bytes": settings.max_upload_bytes,
                "max_sessions": settings.max_sessions, "device": str(predictor.device), "dtype": str(predictor.dtype),
                "sessions": [s.id for s in registry.all()]}

    @app.get("/api/videos", tags=["app"])
    def videos() -> list[dict]:
        """Video files and frame folders under the app's root folder."""
        return list_videos(root)

    # --- sessions
    @app.post("/api/sessions", status_code=201, tags=["sessions"])
    def open_session(body: OpenRequest) -> dict:
        """Open a video file or frame folder under the root: returns id, frame count, size, fps."""
        path = resolve_inside(root, body.path)
        return registry.open(path, body.path).info()

    @app.post("/api/uploads", status_code=201, tags=["sessions"])
    async def upload(request: Request, filename: str = Query(description="the file's name (its suffix says the "
                                                                          "container: .mp4, .mkv, .webm, .mov, .avi)")):
        """Upload a video file (the raw bytes as the request body) and open it."""
        name = Path(filename.replace("\\", "/")).name
        if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
            raise ApiError(415, f"{name}: not a video file name; upload {', '.join(VIDEO_SUFFIXES)}")
        folder = uploads / uuid.uuid4().hex[:8]
        folder.mkdir()
        path = folder / name
        try:
            with open(path, "wb") as sink:
                await _read_body(request, settings.max_upload_bytes, name, sink)
            with open(path, "rb") as f:
                if not _video_signature_ok(f.read(12)):
                    raise ApiError(415, f"{name}: not a video (no MP4/MOV, Matroska/WebM or AVI header)")
            session = await run_in_threadpool(registry.open, path, f"upload: {name}")
        except InputError as error:  # name the upload, not where the server keeps it
            shutil.rmtree(folder, ignore_errors=True)
            raise InputError(str(error).replace(f"{folder}{os.sep}", "")) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return session.info()

    @app.get("/api/sessions", tags=["sessions"])
    def sessions() -> list[dict]:
        return [s.info() for s in registry.all()]

    @app.get("/api/sessions/{session_id}", tags=["sessions"])
    def session_info(session_id: str) -> dict:
        return registry.get(session_id).info()

    @app.delete("/api/sessions/{session_id}", status_code=204, tags=["sessions"])
    def close_session(session_id: str) -> Response:
        registry.close(session_id)
        return Response(status_code=204)

    # --- frames and masks
    @app.get("/api/sessions/{session_id}/frames/{index}.jpg", tags=["frames"],
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    def frame(session_id: str, index: int) -> Response:
        session = registry.get(session_id)
        key = (session.id, index)
        with frames_lock:
            data = frames.get(key)
            if data is not None:
                frames.move_to_end(key)
        if data is None:
            import cv2

            rgb = session.clip.frame(index)
            _, encoded = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality])
            data = encoded.tobytes()
            with frames_lock:
                frames[key] = data
                while len(frames) > settings.frame_cache:
                    frames.popitem(last=False)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    def _labels(session_id: str, index: int) -> tuple[AppSession, np.ndarray]:
        session = registry.get(session_id)
        return session, session.clip.labels(index)

    @app.get("/api/sessions/{session_id}/masks/{index}.png", tags=["masks"],
             response_class=Response, responses={200: {"content": {"image/png": {}}}})
    def mask_png(session_id: str, index: int) -> Response:
        """The frame's mask as a palette PNG of object ids: its keyframe, else its result, else empty."""
        _, labels = _labels(session_id, index)
        image = Image.fromarray(labels)
        image.putpalette(PALETTE.ravel().tolist())
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return Response(buffer.getvalue(), media_type="image/png")

    @app.get("/api/sessions/{session_id}/masks/{index}.raw", tags=["masks"], response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}}}})
    def mask_raw(session_id: str, index: int) -> Response:
        """The same mask as H*W bytes of object ids, row by row (gzip-encoded); used by the page."""
        session, labels = _labels(session_id, index)
        kind = "keyframe" if index in session.clip.keyframes else "result" if session.clip.result(index) is not None \
            else "empty"
        return Response(gzip.compress(labels.tobytes(), 1), media_type="application/octet-stream",
                        headers={"Content-Encoding": "gzip", "X-Mask": kind})

    @app.put("/api/sessions/{session_id}/masks/{index}", tags=["masks"],
             openapi_extra={"requestBody": {"content": {
                 "image/png": {"schema": {"type": "string", "format": "binary"}},
                 "application/json": {"schema": {"type": "object", "example": {"objects": [
                     {"id": 1, "rle": {"size": [480, 854], "counts": [0, 10]}}]}}}}}})
    async def put_mask(session_id: str, index: int, request: Request) -> dict:
        """Set the keyframe at frame ``index``: a PNG of object ids (palette, 8-bit grey or grey RGB(A); 0 =
        background), or JSON COCO RLE per object. It replaces any mask drawn there before."""
        session = registry.get(session_id)
        source = f"mask for frame {index}"
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        body = await _read_body(request, MAX_MASK_BYTES, source)
        if kind == "application/json":
            try:
                payload = json.loads(body)
            except ValueError:
                raise ApiError(400, f"{source}: the body is not valid JSON") from None
            labels = decode_mask_rle(payload, session.clip.frame_size, source=source)
        elif body.startswith(PNG_SIGNATURE):
            labels = await run_in_threadpool(_decode_png, body, source)
        else:
            raise ApiError(415, f"{source}: send a PNG (image/png) or JSON RLE (application/json)")
        with session.lock:
            session.require_idle()
            session.clip.set_keyframe(index, labels, source=source)
            session.sync_objects()
        return session.info()

    @app.delete("/api/sessions/{session_id}/masks/{index}", tags=["masks"])
    def remove_keyframe(session_id: str, index: int) -> dict:
        """Remove the keyframe at frame ``index`` (the mask drawn there). The frame shows no mask until the next
        propagation, which recomputes the frames that depended on it."""
        session = registry.get(session_id)
        with session.lock:
            session.remove_keyframe(index)
        return session.info()

    # --- objects
    @app.post("/api/sessions/{session_id}/objects", status_code=201, tags=["objects"])
    def add_object(session_id: str, body: ObjectRequest) -> dict:
        session = registry.get(session_id)
        object_id = session.add_object(body.name)
        return next(o for o in session.objects() if o["id"] == object_id)

    @app.patch("/api/sessions/{session_id}/objects/{object_id}", tags=["objects"])
    def rename_object(session_id: str, object_id: int, body: RenameRequest) -> dict:
        session = registry.get(session_id)
        session.rename_object(object_id, body.name)
        return next(o for o in session.objects() if o["id"] == object_id)

    @app.delete("/api/sessions/{session_id}/objects/{object_id}", tags=["objects"])
    def remove_object(session_id: str, object_id: int) -> dict:
        """Remove the object from every keyframe and result."""
        session = registry.get(session_id)
        with session.lock:
            session.remove_object(object_id)
        return session.info()

    # --- propagation jobs
    @app.post("/api/sessions/{session_id}/propagate", status_code=202, tags=["jobs"])
    def propagate(session_id: str, body: PropagateRequest) -> dict:
        """Propagate the keyframes in ``direction``, recomputing only the frames they can change. ``from``: a frame
        whose current mask (its result) becomes a keyframe first. Returns the job; follow it with GET .../jobs/{id}
        or the server-sent events of .../jobs/{id}/events."""
        session = registry.get(session_id)
        clip = session.clip
        with session.lock:
            session.require_idle()
            start = clip.start_frame(body.start)
            total = len(clip.plan(body.direction))
            job = Job(session.id, lambda: clip.propagate(body.direction), total,
                      description={"direction": body.direction, "from": start})
            session.start_job(job)
        runner.submit(job)
        return job.status()

    @app.get("/api/sessions/{session_id}/jobs/{job_id}", tags=["jobs"])
    def job_status(session_id: str, job_id: str) -> dict:
        return registry.get(session_id).get_job(job_id).status()

    @app.get("/api/sessions/{session_id}/jobs/{job_id}/events", tags=["jobs"],
             response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
    async def job_events(session_id: str, job_id: str, request: Request) -> StreamingResponse:
        """Server-sent events: the job's status (as in GET .../jobs/{id}) whenever it changes, until it ends."""
        job = registry.get(session_id).get_job(job_id)

        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def notify() -> None:  # on the worker thread: wake this stream (no polling, so no GIL traffic while idle)
            try:
                loop.call_soon_threadsafe(changed.set)
            except RuntimeError:  # the event loop is closing
                pass

        async def stream():
            unsubscribe = job.subscribe(notify)
            try:
                last = None
                while True:
                    changed.clear()
                    status = job.status()
                    if (status["state"], status["done"]) != last:
                        last = (status["state"], status["done"])
                        yield f"event: progress\ndata: {json.dumps(status)}\n\n"
                    if status["state"] in FINISHED:  # the status just sent, not a newer one: the end is always sent
                        return
                    try:
                        await asyncio.wait_for(changed.wait(), timeout=KEEP_ALIVE_S)
                    except asyncio.TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": keep-alive\n\n"
            finally:
                unsubscribe()

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/api/sessions/{session_id}/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel_job(session_id: str, job_id: str) -> dict:
        """Stop the job after the frame it is computing; every frame computed so far is kept."""
        job = registry.get(session_id).get_job(job_id)
        job.cancel()
        return job.status()

    # --- exports
    @app.post("/api/sessions/{session_id}/exports", tags=["exports"],
              responses={200: {"content": {"application/json": {}, "application/zip": {}}}})
    def export(session_id: str, body: ExportRequest):
        """Write every frame's mask in an editor format: into ``folder`` under the root (JSON answer listing the
        files), or as a zip download."""
        session = registry.get(session_id)
        if body.format not in EXPORT_FORMATS:
            raise ApiError(422, f"format {body.format!r} is not one of {', '.join(EXPORT_FORMATS)}")
        session.require_idle()
        if body.folder is not None:
            folder = resolve_inside(root, body.folder, must_exist=False)
            if folder.exists() and not folder.is_dir():
                raise InputError(f"{body.folder}: is a file; give a folder to export into")
            files = session.clip.export(body.format, folder, session.names, body.options)
            return {"format": body.format, "folder": folder.relative_to(root).as_posix(),
                    "files": [p.relative_to(root).as_posix() for p in files]}
        work = Path(tempfile.mkdtemp(prefix="seggpt-vos-export-"))
        try:
            session.clip.export(body.format, work / "export", session.names, body.options)
            archive = shutil.make_archive(str(work / f"{session.clip.name}-{body.format}"), "zip", work / "export")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return FileResponse(archive, media_type="application/zip", filename=Path(archive).name,
                            background=BackgroundTask(shutil.rmtree, work, ignore_errors=True))

    return app


def _decode_png(data: bytes, source: str) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="seggpt-vos-mask-") as folder:
        path = Path(folder) / "mask.png"
        path.write_bytes(data)
        return decode_mask_png(path, source=source)
