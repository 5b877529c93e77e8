"""Video file readers on a long 480p video: resident memory and frames/s, decord (the runtime reader) vs OpenCV.

A 3000-frame 854x480 H.264 file (x264 defaults but a keyframe every ``--gop`` frames) is written once; then, each in
a fresh child process so memory figures do not mix:

- ``decord-forward``: ``VideoFileSource`` (decord) reading every frame in chunks of 16, first to last;
- ``decord-backward``: the same, last to first (each chunk is one ``get_batch`` of 16 indices: a seek per chunk);
- ``decord-idle``: open the file and wait ``--idle`` seconds without reading (decord decodes ahead after a read);
- ``decord-slow``: forwards like ``decord-forward``, 400 frames, with a consumer that takes 50 ms per frame;
- ``opencv-forward``: ``OpenCVFileSource`` (``cv2.VideoCapture``), first to last;
- ``opencv-backward``: ``cv2.VideoCapture`` seeking (``CAP_PROP_POS_FRAMES``) to each chunk of 16, last to first.

Reported: frames/s, resident memory (VmRSS) after opening, at each quarter of the read, and the peak (VmHWM). The
machine is shared: compare speeds within one run only.

    python scripts/bench_readers.py --frames 3000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHUNK = 16


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_video(path: Path, frames: int, gop: int) -> None:
    import imageio_ffmpeg

    h, w = 480, 854
    yy, xx = np.mgrid[:h, :w]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=25, codec="libx264", macro_block_size=2,
                                         output_params=["-g", str(gop)], ffmpeg_log_level="error")
    writer.send(None)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
    for t in range(frames):  # moving gradients + fixed noise: every frame differs, and costs real bits
        frame = np.stack([(xx + 3 * t) % 256, (yy + 2 * t) % 256, (xx + yy + 5 * t) % 256], -1).astype(np.uint8)
        writer.send(np.ascontiguousarray(frame + noise))
    writer.close()


def chunks(n: int, backward: bool) -> list[list[int]]:
    order = list(range(n - 1, -1, -1)) if backward else list(range(n))
    return [order[i:i + CHUNK] for i in range(0, n, CHUNK)]


def child(kind: str, path: Path, idle: float) -> dict:
    import cv2

    from vos.readers import OpenCVFileSource, VideoFileSource

    out = {"kind": kind, "rss_start_mb": rss_mb()}
    start = time.perf_counter()
    quarters = []
    if kind.startswith("decord"):
        source = VideoFileSource(path, chunk_size=CHUNK)
        n = len(source)
        out["rss_open_mb"] = rss_mb()
        if kind == "decord-idle":
            for _ in range(int(idle)):
                time.sleep(1)
                quarters.append(rss_mb())
            out.update(rss_mb=quarters, peak_mb=rss_mb("VmHWM"), frames=0)
            return out
        if kind == "decord-slow":
            n = min(n, 400)
        order = [i for c in chunks(n, kind.endswith("backward")) for i in c]
        count = 0
        for frame in source.read(order):
            count += 1
            if kind == "decord-slow":
                time.sleep(0.05)  # a consumer (the model) at 20 frames/s
            if count % (n // 4) == 0:
                quarters.append(rss_mb())
    elif kind == "opencv-forward":
        source = OpenCVFileSource(path, chunk_size=CHUNK)
        n = len(source)
        out["rss_open_mb"] = rss_mb()
        count = 0
        for frame in source:
            count += 1
            if count % (n // 4) == 0:
                quarters.append(rss_mb())
    else:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        n = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        out["rss_open_mb"] = rss_mb()
        count = 0
        for chunk in chunks(n, backward=True):
            capture.set(cv2.CAP_PROP_POS_FRAMES, min(chunk))
            for _ in chunk:
                ok, bgr = capture.read()
                assert ok
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                count += 1
                if count % (n // 4) == 0:
                    quarters.append(rss_mb())
        capture.release()
    seconds = time.perf_counter() - start
    out.update(frames=count, fps=count / seconds, rss_mb=quarters, peak_mb=rss_mb("VmHWM"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--gop", type=int, default=50, help="keyframe interval of the test file (2 s at 25 fps)")
    ap.add_argument("--idle", type=float, default=5)
    ap.add_argument("--kinds", default="decord-idle,decord-slow,decord-forward,opencv-forward,decord-backward,opencv-backward")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.idle)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.mp4"
        write_video(path, args.frames, args.gop)
        print(f"{args.frames} frames 854x480 H.264 (keyframe every {args.gop}), {path.stat().st_size / 2**20:.0f} MB; "
              f"chunks of {CHUNK}; shared machine: compare speeds within this run only")
        for kind in args.kinds.split(","):
            run = subprocess.run([sys.executable, __file__, "--child", kind, str(path), "--idle", str(args.idle)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(run.stdout.strip().splitlines()[-1])
            speed = f"{r['fps']:6.0f} frames/s" if r["frames"] else "  (no reading)  "
            print(f"{kind:16s} {speed}  RSS after open {r['rss_open_mb']:5.0f} MB, during "
                  f"{' / '.join(f'{v:.0f}' for v in r['rss_mb'])} MB, peak {r['peak_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
