"""Benchmark of ``seggpt-vos app`` over real HTTP (uvicorn on 127.0.0.1), against the issue's targets:

- a 480p frame served in < 100 ms (first request of each frame: decode + JPEG encode; and from the frame cache);
- the first progress event within 1 s of starting a job (the first event, and the first event with a computed frame);
- propagation through the app within 10 % of the command line's frames/s on the same clip (``run_video``, the code
  behind ``seggpt-vos propagate``, forward from a frame-0 mask, palette PNGs written), runs interleaved.

    python scripts/bench_app.py [--frames 40] [--repeats 3] [--sequence dog] [--out runs/bench-app.json]

Needs ``../shared/data/davis-mini`` (any DAVIS-layout root with --davis). Timings on a shared machine are noisy:
compare the ratio measured within one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method: str, url: str, body: bytes | dict | None = None, content_type: str = "application/json"):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=600) as response:
        payload = response.read()
        return json.loads(payload) if response.headers.get_content_type() == "application/json" else payload


def follow(url: str, started: float) -> tuple[float | None, float | None, dict]:
    """Read a job's server-sent events to the end: seconds to the first event, to the first frame the model
    computed, and the last event."""
    first = first_frame = None
    last = {}
    with urllib.request.urlopen(url, timeout=600) as stream:
        for line in stream:
            if not line.startswith(b"data: "):
                continue
            last = json.loads(line[6:])
            now = time.perf_counter() - started
            first = now if first is None else first
            if first_frame is None and last["done"] >= 2:  # frame 0 is the keyframe itself: 2 = first model output
                first_frame = now
    return first, first_frame, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", type=Path, default=REPO.parent / "shared" / "data" / "davis-mini")
    parser.add_argument("--sequence", default="dog")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-app.json")
    args = parser.parse_args()

    import torch
    import uvicorn

    from seggpt_core.checkpoint import DEFAULT_MODEL
    from seggpt_core.predictor import SegGPTPredictor
    from vos.app.server import AppSettings, create_app
    from vos.pipeline import OutputSpec, run_video

    torch.set_num_threads(args.threads)
    predictor = SegGPTPredictor.from_pretrained(DEFAULT_MODEL, device="cpu")
    work = Path(tempfile.mkdtemp(prefix="bench-app-"))
    clip = work / "root" / args.sequence
    clip.mkdir(parents=True)
    for i in range(args.frames):
        shutil.copy(args.davis / "JPEGImages" / "480p" / args.sequence / f"{i:05d}.jpg", clip)
    mask = args.davis / "Annotations" / "480p" / args.sequence / "00000.png"
    import imageio_ffmpeg
    import numpy as np
    from PIL import Image

    encoder = imageio_ffmpeg.write_frames(str(work / "root" / f"{args.sequence}.mp4"), (854, 480), fps=24,
                                          codec="libx264", pix_fmt_out="yuv420p", macro_block_size=2,
                                          ffmpeg_log_level="error")
    encoder.send(None)
    for p in sorted(clip.iterdir()):
        encoder.send(np.ascontiguousarray(np.asarray(Image.open(p).convert("RGB"))))
    encoder.close()

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(predictor, AppSettings(root=work / "root", max_sessions=16)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    api = f"http://127.0.0.1:{port}/api"

    def open_with_mask() -> str:
        sid = request("POST", f"{api}/sessions", {"path": args.sequence})["id"]
        request("PUT", f"{api}/sessions/{sid}/masks/0", mask.read_bytes(), "image/png")
        return sid

    # frames: every frame once in random order (decode + encode; the mp4 seeks), then again (cache)
    import random

    orders = {"in order": list(range(args.frames)),
              "random order": random.Random(0).sample(range(args.frames), args.frames)}
    frame_ms = {}
    for path in (args.sequence, f"{args.sequence}.mp4"):
        for order_name, order in orders.items():
            sid = request("POST", f"{api}/sessions", {"path": path})["id"]
            cold, warm = [], []
            for times in (cold, warm):
                for i in order:
                    start = time.perf_counter()
                    jpeg = request("GET", f"{api}/sessions/{sid}/frames/{i}.jpg")
                    times.append(1000 * (time.perf_counter() - start))
                    assert jpeg[:2] == b"\xff\xd8"
            request("DELETE", f"{api}/sessions/{sid}")
            frame_ms[f"{path}, {order_name}"] = {"first_request_median": statistics.median(cold),
                                                 "first_request_max": max(cold),
                                                 "cached_median": statistics.median(warm)}

    # propagation: the command line's code path and the app, interleaved (alternating which goes first), after a
    # warm-up run of each (the first model calls pay for kernel selection)
    # Besides wall-clock frames/s, the CPU seconds the whole process spent per frame (all threads: model, decoding,
    # server, client): on a machine shared with other jobs the wall clock mostly measures the neighbours.
    def cli() -> tuple[float, float]:
        cpu = time.process_time()
        stats = run_video(predictor, clip, {0: mask}, OutputSpec(masks=work / "cli"), progress=False,
                          direction="forward")
        cpu = (time.process_time() - cpu) / args.frames
        shutil.rmtree(work / "cli", ignore_errors=True)
        return stats.fps, cpu

    def app() -> tuple[float, float, float, float]:
        sid = open_with_mask()
        cpu, started = time.process_time(), time.perf_counter()
        job = request("POST", f"{api}/sessions/{sid}/propagate", {"direction": "forward"})
        first, first_done, last = follow(f"{api}/sessions/{sid}/jobs/{job['id']}/events", started)
        elapsed, cpu = time.perf_counter() - started, (time.process_time() - cpu) / args.frames
        assert last["state"] == "done" and last["done"] == args.frames, last
        request("DELETE", f"{api}/sessions/{sid}")
        return args.frames / elapsed, cpu, first, first_done

    cli(), app()
    cli_fps, app_fps, cli_cpu, app_cpu, first_event, first_frame = [], [], [], [], [], []
    for repeat in range(args.repeats):
        for run in ((cli, app) if repeat % 2 == 0 else (app, cli)):
            if run is cli:
                fps, cpu = cli()
                cli_fps.append(fps)
                cli_cpu.append(cpu)
            else:
                fps, cpu, first, first_done = app()
                app_fps.append(fps)
                app_cpu.append(cpu)
                first_event.append(first)
                first_frame.append(first_done)
    server.should_exit = True
    thread.join(timeout=30)
    shutil.rmtree(work, ignore_errors=True)

    result = {
        "clip": f"{args.sequence}, {args.frames} frames, 854x480 (frame folder; and as H.264 mp4 for frames)",
        "device": str(predictor.device),
        "dtype": str(predictor.dtype), "threads": args.threads,
        "frame_ms": frame_ms, "first_event_s": max(first_event), "first_model_frame_s": max(first_frame),
        "cli_fps": cli_fps, "app_fps": app_fps, "cli_cpu_s_per_frame": cli_cpu, "app_cpu_s_per_frame": app_cpu,
        "cpu_app_over_cli": statistics.median(a / c for a, c in zip(app_cpu, cli_cpu)),
        "app_over_cli": statistics.median(a / c for a, c in zip(app_fps, cli_fps)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for case, ms in frame_ms.items():
        print(f"frame served (480p)    : {case}: first request median {ms['first_request_median']:.1f} ms, max "
              f"{ms['first_request_max']:.1f} ms; cached median {ms['cached_median']:.1f} ms  (target < 100 ms)")
    print(f"first progress event   : {result['first_event_s']:.3f} s; first frame from the model "
          f"{result['first_model_frame_s']:.3f} s (worst of {args.repeats})  (target < 1 s)")
    print(f"propagation frames/s   : CLI {', '.join(f'{v:.2f}' for v in cli_fps)}; app "
          f"{', '.join(f'{v:.2f}' for v in app_fps)}; app/CLI median of pairs {result['app_over_cli']:.3f}  "
          "(target >= 0.9)")
    print(f"CPU s per frame        : CLI {', '.join(f'{v:.3f}' for v in cli_cpu)}; app "
          f"{', '.join(f'{v:.3f}' for v in app_cpu)}; app/CLI median of pairs {result['cpu_app_over_cli']:.3f}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
