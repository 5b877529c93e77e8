"""Alpha video: the matte (or the frame cut out by it) as one video file that editors import with its transparency.

The container picks the codec: ``.mov`` ProRes 4444 with alpha (``prores_ks``, profile 4444, 10-bit ``yuva444p10le``,
what editors ask for), ``.webm`` VP9 with alpha (``yuva420p``, lossless, for the web), ``.mkv`` FFV1 (lossless; a
greyscale matte, or RGBA for cut-outs). Encoded by the ffmpeg that ``imageio-ffmpeg`` ships (no system ffmpeg), at
the exact frame rate given as a fraction (30000/1001 stays 30000/1001), to a temp file renamed when the video
completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from seggpt_core.atomic import remove_stale_temps, temp_path
from seggpt_core.errors import InputError

from .mattes import Mattes, cutout
from .sequences import MatteContent, Timeline
from .writers import finish_encoder


@dataclass(frozen=True)
class AlphaCodec:
    """How one container is encoded: ffmpeg encoder, output pixel format per content, encoder options."""

    encoder: str
    matte_pix_fmt: str  #: pixel format written for ``content="matte"``
    cutout_pix_fmt: str  #: pixel format written for ``content="cutout"``
    options: tuple[str, ...] = ()

    def input_pix_fmt(self, content: MatteContent) -> str:
        """What we send: a matte as (H, W) grey, or (H, W, 2) grey + alpha for codecs with alpha; a cut-out as (H, W,
        4) RGBA."""
        if content == "cutout":
            return "rgba"
        return "gray" if self.matte_pix_fmt == "gray" else "ya8"


#: Container suffix -> codec. ProRes 4444 codes its (16-bit) alpha plane losslessly; its colour planes use a fixed
#: quantiser (``-q:v 2``): prores_ks's default per-slice quantiser search costs five times the CPU (37 vs 7 ms a
#: 480p matte frame here) for colour that already reads back above 50 dB PSNR on noisy cut-outs. VP9 and FFV1 are
#: lossless.
ALPHA_CODECS = {
    ".mov": AlphaCodec("prores_ks", "yuva444p10le", "yuva444p10le",
                       ("-profile:v", "4444", "-vendor", "apl0", "-q:v", "2")),
    ".webm": AlphaCodec("libvpx-vp9", "yuva420p", "yuva420p",
                        ("-lossless", "1", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1")),
    ".mkv": AlphaCodec("ffv1", "gray", "bgra", ("-level", "3")),
}


def alpha_codec(path: Path) -> AlphaCodec:
    """The codec of an alpha video path, by its extension; an unknown one is an ``InputError``."""
    codec = ALPHA_CODECS.get(path.suffix.lower())
    if codec is None:
        raise InputError(f"{path}: unknown alpha video extension {path.suffix!r}; use .mov (ProRes 4444), .webm "
                         "(VP9 with alpha) or .mkv (FFV1 lossless)")
    return codec


class AlphaVideoWriter:
    """One video of all objects' matte: ``content="matte"`` (white = object; in .mov/.webm also the alpha) or
    ``"cutout"`` (the frame's colours with the matte as straight alpha). The matte is drawn by ``mattes`` (shared with
    the other alpha outputs; it carries its clean-up's feather).

    An interrupted run leaves no video; an existing file is replaced only with ``overwrite``.
    """

    def __init__(self, path: str | Path, *, timeline: Timeline = Timeline(), content: MatteContent = "matte",
                 mattes: Mattes | None = None, overwrite: bool = False):
        self.path = Path(path)
        self.codec = alpha_codec(self.path)
        if content not in ("matte", "cutout"):
            raise InputError(f"--alpha-video-content must be 'matte' or 'cutout', got {content!r}")
        if self.path.exists() and not overwrite:
            raise InputError(f"{self.path}: alpha video exists; pass --overwrite to replace it or choose another name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.path.parent, self.path.suffix, self.path.stem)
        self.fps: Fraction = timeline.fps
        self.content, self.mattes = content, mattes or Mattes()
        self.needs_frame = content == "cutout"
        self.frames = 0
        self._tmp: Path | None = None
        self._encoder = None

    def _start(self, height: int, width: int) -> None:
        import imageio_ffmpeg

        self._tmp = temp_path(self.path)
        pix_fmt = self.codec.matte_pix_fmt if self.content == "matte" else self.codec.cutout_pix_fmt
        self._encoder = imageio_ffmpeg.write_frames(
            str(self._tmp), (width, height), pix_fmt_in=self.codec.input_pix_fmt(self.content), pix_fmt_out=pix_fmt,
            fps=self.fps, codec=self.codec.encoder, quality=None, macro_block_size=1, ffmpeg_log_level="error",
            output_params=list(self.codec.options))
        self._encoder.send(None)

    def pixels(self, index: int, labels: np.ndarray, frame: np.ndarray | None) -> np.ndarray:
        """What is sent for frame ``index``: (H, W) grey, (H, W, 2) grey + alpha or (H, W, 4) RGBA, uint8."""
        alpha = self.mattes.alpha(index, labels, None)
        if self.content == "cutout":
            return cutout(frame, alpha)
        if self.codec.input_pix_fmt("matte") == "gray":
            return alpha
        # grey + alpha, both the matte: a uint16 of value 257 * a holds the byte a twice (either byte order), one
        # pass where stacking two planes costs four times the CPU
        return np.multiply(alpha, np.uint16(257), dtype=np.uint16).view(np.uint8).reshape(*alpha.shape, 2)

    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None) -> None:
        if index != self.frames:
            raise RuntimeError(f"{self.path}: a video needs frames in index order, got frame {index} after "
                               f"{self.frames} frames")
        if self._encoder is None:
            self._start(*labels.shape)
        self._encoder.send(np.ascontiguousarray(self.pixels(index, labels, frame)))
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        if self._encoder is not None:
            encoder, self._encoder = self._encoder, None
            finish_encoder(encoder, self._tmp, self.path, complete)
