"""The API's errors: every one becomes a 4xx JSON ``{"detail": "<one line>"}`` (``InputError`` is a 400)."""

from __future__ import annotations


class ApiError(Exception):
    """An error with its HTTP status: 404 unknown session/object/job/path, 409 a job is running, 413 too large,
    415 not a video/PNG, 429 every session slot busy."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = " ".join(detail.split())
