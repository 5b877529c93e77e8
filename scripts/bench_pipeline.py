"""Speed and memory of the whole video pipeline (``vos.pipeline.run_video``): does the I/O hide behind the model, and
does memory stay flat however long the video is?

Test videos are synthetic 480p (854x480) H.264 mp4s rendered and encoded frame by frame (never all in memory), with
the first frame's mask as a palette PNG; they are cached under ``--videos`` so reruns reuse them.

Speed (the paper's joint mode, one ``paint`` call per frame): on one video, in the same process and interleaved round
by round,
  * end to end: ``run_video`` on the mp4 writing palette PNGs (``--overlay``: and the H.264 overlay;
    ``--editor-outputs``: and per-object matte PNG sequences, a ProRes 4444 alpha .mov and EXR channels) -- decoding,
    resizing, the model, decoding the painting to ids and writing, timed around the whole call;
  * model only: the same number of ``predictor.paint`` calls with the same prompt-batch sizes as the session (frame 0
    is the annotation, frame t >= 1 sees it plus the last min(t - 1, context) predictions), on tensors prepared
    before timing, only the calls timed;
and reports the ratio of frames/s, end to end over model only (median over rounds; the target is >= 0.95 writing
palette PNGs, >= 0.9 with the editor outputs). Because the two runs of a round see different loads on a shared
machine, it also reports two figures measured inside the end-to-end run itself: the model's share of its wall time
(what the model thread's other work, its waits and the start and end of the run cost; 1 - share is what is not
hidden) and how much slower ``paint`` ran there than in the model-only run (CPU stolen by the other threads; about
1.0 on a GPU). The ratio is their quotient. Last, the CPU time per frame of the session's model thread, of the
caller's thread (the session decoding paintings to full-resolution ids, ``run_video`` queueing them for the writer)
and of everything else (decoding, the writer thread, ffmpeg encoders): load barely changes it, and all but the model
thread's must fit on the cores the model leaves free.

Stages (``--stages``): where that CPU goes, each stage run alone on the same video, one after the other, as CPU ms per
frame of the whole process and its reaped children (so decord's and ffmpeg's own threads count): decoding the mp4,
the model (``paint``), the rest of the session's work on the model's thread (prompt batches, painting -> slots at
model resolution), on the caller's thread (upsampling to full resolution, id mapping, result store) and on the reader
threads (resizing frames for the model), and each output format writing the session's labels, frame by frame through
all formats as in ``run_video``, so the alpha outputs share each frame's mattes (the first alpha output in the table
pays for computing them). Load barely changes CPU time, so this table is the one to trust on a busy
machine.

Memory: one child process per length (``--memory-frames``, default 300 and 3000) runs ``run_video`` on its mp4
writing palette PNGs and reports its RSS over the run (the highest of each quarter: flat when memory is bounded; the
session keeps up to ``--store-budget-mb`` of results in RAM before spilling them, which a short run may not reach)
and its peak RSS (VmHWM); the target is the long video's peak within 5% of the short
one's. Memory is about bounded buffers, not model size, so a small model is fine there (``--memory-config``).

    python scripts/bench_pipeline.py                                  # shipped model (seggpt-vos-small), CPU
    python scripts/bench_pipeline.py --config seggpt-vos-small --memory-config test-tiny --threads 1
                                                                      # its architecture freshly initialised
    python scripts/bench_pipeline.py --device cuda --frames 300       # GPU: pinned host buffers, async copies
    python scripts/bench_pipeline.py --skip-memory --profile 25       # + where the main thread's time goes (cProfile)
    python scripts/bench_pipeline.py --skip-memory --editor-outputs   # + mattes, ProRes 4444 .mov and EXR
    python scripts/bench_pipeline.py --skip-memory --skip-speed --stages --editor-outputs   # CPU ms per stage
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seggpt_core.atomic import atomic_path, atomic_write  # noqa: E402
from seggpt_core.checkpoint import DEFAULT_MODEL, SHIPPED  # noqa: E402
from seggpt_core.errors import InputError  # noqa: E402
from seggpt_core.model import PRESETS, SegGPT  # noqa: E402
from seggpt_core.predictor import SegGPTPredictor  # noqa: E402
from vos.allocator import keep_freed_blocks  # noqa: E402
from vos.config import PAPER_CONTEXT  # noqa: E402
from vos.masks import davis_palette  # noqa: E402
from vos.pipeline import OutputSpec, run_video  # noqa: E402
from vos.readers import VideoFileSource  # noqa: E402
from vos.session import PropagationConfig, VideoSession  # noqa: E402
from vos.training.synthetic import SyntheticVideo, SyntheticVideoConfig  # noqa: E402

SIZE = (480, 854)  # (H, W): DAVIS 480p
FPS = 24.0


# --------------------------------------------------------------------------------------------------- test videos


@dataclass(frozen=True)
class TestVideo:
    mp4: Path  #: H.264 yuv420p, ``frames`` frames of ``SIZE``
    mask: Path  #: palette PNG: frame 0's object ids
    frames: int


def make_video(folder: Path, frames: int, seed: int = 0) -> TestVideo:
    """Synthetic video ``seed`` as an mp4 + its first mask, streamed frame by frame; reused when already written.

    The mp4 is encoded to a temp file and renamed when complete, and written after the mask, so an existing mp4
    means a complete pair.
    """
    import imageio_ffmpeg

    folder.mkdir(parents=True, exist_ok=True)
    stem = f"synthetic-{seed}-{SIZE[0]}p-{frames}f"
    video = TestVideo(folder / f"{stem}.mp4", folder / f"{stem}-mask0.png", frames)
    if video.mp4.is_file() and video.mask.is_file():
        return video
    synthetic = SyntheticVideo(seed, SyntheticVideoConfig(size=SIZE, num_frames=frames, num_objects=(2, 4),
                                                          texture_source="procedural"))
    _, labels = synthetic.frame(0)
    mask = Image.fromarray(labels, mode="P")
    mask.putpalette(davis_palette().ravel().tolist())
    atomic_write(video.mask, lambda f: mask.save(f, format="PNG"))
    with atomic_path(video.mp4) as tmp:
        encoder = imageio_ffmpeg.write_frames(str(tmp), (SIZE[1], SIZE[0]), fps=FPS, codec="libx264",
                                              pix_fmt_out="yuv420p", quality=7, macro_block_size=2,
                                              ffmpeg_log_level="error", output_params=["-preset", "veryfast"])
        encoder.send(None)
        for image, _ in synthetic:
            encoder.send(image)
        encoder.close()
    print(f"wrote {video.mp4} ({frames} frames)", flush=True)
    return video


# --------------------------------------------------------------------------------------------------------- model


def build_predictor(args: argparse.Namespace, config_name: str | None) -> tuple[SegGPTPredictor, str]:
    """The predictor to benchmark and a one-line description of its model.

    ``config_name``: a ``PRESETS`` name for a freshly initialised model (seeded), else ``args.model`` is loaded.
    """
    if config_name is not None:
        torch.manual_seed(0)
        model, what = SegGPT(PRESETS[config_name]), f"{config_name} (freshly initialised)"
    else:
        if args.model in SHIPPED and not (SHIPPED[args.model] / "config.json").is_file():
            raise InputError(f"the shipped model {args.model!r} is not in {SHIPPED[args.model]} yet; train it, give "
                             "--model DIR, or benchmark a fresh model with --config test-tiny")
        model, what = SegGPT.from_pretrained(args.model), f"{args.model} (weights)"
    predictor = SegGPTPredictor(model, device=args.device, dtype=args.dtype, compile=args.compile)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    h, w = predictor.half_size
    return predictor, f"{what}, {params:.1f}M params, {h}x{w} input, {predictor.dtype} on {predictor.device}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------------------------- speed


def prepared_frames(predictor: SegGPTPredictor, video: TestVideo) -> list[torch.Tensor]:
    """Every frame of the mp4 as the model input, (3, h, w) on the device (small: model resolution)."""
    return [predictor.prepare_image(frame.rgb) for frame in VideoFileSource(video.mp4)]


def model_only_seconds(predictor: SegGPTPredictor, inputs: list[torch.Tensor], context: int) -> float:
    """Seconds spent in the ``paint`` calls the session makes on these frames, nothing else timed.

    Frame t >= 1 is painted with P = 1 + min(t - 1, context) prompts: the annotated frame 0 plus the FIFO of recent
    predictions. Frames stand in for their targets (same shapes; the model's cost does not depend on pixel values).
    """
    total = 0.0
    for t in range(1, len(inputs)):
        recent = inputs[max(1, t - context):t]
        prompts = torch.stack([inputs[0], *recent])
        sync(predictor.device)
        start = time.perf_counter()
        predictor.paint(prompts, prompts, inputs[t][None])
        sync(predictor.device)
        total += time.perf_counter() - start
    return total


class CpuTimer:
    """CPU seconds while installed: the caller's thread (the session's decoding of paintings to full-resolution ids,
    and handing them to the writer) and the whole process plus its reaped children (the model's thread, decoding, the
    writer thread, ffmpeg encoders). CPU time hardly depends on the machine's load, so it tells whether the background
    work fits on the cores the model leaves free."""

    def __enter__(self) -> CpuTimer:
        self._start = self._now()
        return self

    @staticmethod
    def _now() -> tuple[float, float]:
        return time.thread_time(), process_cpu_seconds()

    def __exit__(self, *exc) -> None:
        self.caller_seconds, self.total_seconds = (end - start for end, start in zip(self._now(), self._start))


class PaintTimer:
    """While installed on the predictor: the seconds ``predictor.paint`` runs (synchronised on a GPU), and the CPU
    seconds of the thread that calls it (the session's model thread) from its first call to the end of its last, in
    and between the calls.

    Measured inside the end-to-end run, the model's share of its wall time is immune to the machine's load changing
    between rounds, unlike the ratio of two runs.
    """

    def __init__(self, predictor: SegGPTPredictor) -> None:
        self.predictor = predictor
        self.seconds = 0.0
        self.thread_cpu_seconds = 0.0
        self._first_cpu: float | None = None

    def __enter__(self) -> PaintTimer:
        paint = self.predictor.paint

        def timed(*args, **kwargs):
            sync(self.predictor.device)
            if self._first_cpu is None:
                self._first_cpu = time.thread_time()
            start = time.perf_counter()
            out = paint(*args, **kwargs)
            sync(self.predictor.device)
            self.seconds += time.perf_counter() - start
            self.thread_cpu_seconds = time.thread_time() - self._first_cpu
            return out

        self.predictor.paint = timed
        return self

    def __exit__(self, *exc) -> None:
        del self.predictor.paint  # the instance attribute; the method shows again


def output_spec(args: argparse.Namespace, out: Path) -> OutputSpec:
    """The outputs asked for: palette PNGs always, the overlay and the editor outputs on request."""
    editor = args.editor_outputs
    return OutputSpec(masks=out / "masks", overlay=out / "overlay.mp4" if args.overlay else None,
                      alpha=out / "alpha" if editor else None, alpha_video=out / "mattes.mov" if editor else None,
                      exr=out / "exr" if editor else None)


def describe_outputs(args: argparse.Namespace) -> str:
    return ("palette PNGs" + (" + H.264 overlay" if args.overlay else "")
            + (" + per-object matte PNGs + ProRes 4444 alpha .mov + EXR channels" if args.editor_outputs else ""))


def end_to_end_seconds(predictor: SegGPTPredictor, video: TestVideo, outputs: OutputSpec, config: PropagationConfig,
                       profile: cProfile.Profile | None = None) -> float:
    """Wall time of ``run_video`` on the mp4, from opening the file to the last output written."""
    start = time.perf_counter()
    if profile is not None:
        profile.enable()
    stats = run_video(predictor, video.mp4, {0: video.mask}, outputs, config, progress=False)
    if profile is not None:
        profile.disable()
    seconds = time.perf_counter() - start
    if stats.frames != video.frames:
        raise RuntimeError(f"run_video wrote {stats.frames} frames of {video.frames}")
    return seconds


def bench_speed(args: argparse.Namespace, video: TestVideo) -> dict:
    predictor, description = build_predictor(args, args.config)
    config = PropagationConfig(context=args.context, mode="joint")  # the paper's mode: one paint call per frame
    with torch.inference_mode():
        inputs = prepared_frames(predictor, video)
        model_only_seconds(predictor, inputs[:args.context + 2], args.context)  # warm-up (and compilation)
    rounds = []
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-", dir=args.scratch) as out:
        for r in range(args.rounds):
            with PaintTimer(predictor) as in_e2e, CpuTimer() as cpu:
                e2e = end_to_end_seconds(predictor, video, output_spec(args, Path(out) / f"round{r}"), config,
                                         profile if r == args.rounds - 1 else None)
            with torch.inference_mode():
                model = model_only_seconds(predictor, inputs, args.context)
            rounds.append({"e2e_fps": video.frames / e2e, "model_fps": video.frames / model, "ratio": model / e2e,
                           "model_share": in_e2e.seconds / e2e, "paint_slowdown": in_e2e.seconds / model,
                           "model_thread_cpu_ms": 1000 * in_e2e.thread_cpu_seconds / video.frames,
                           "caller_cpu_ms": 1000 * cpu.caller_seconds / video.frames,
                           "background_cpu_ms": 1000 * (cpu.total_seconds - cpu.caller_seconds
                                                        - in_e2e.thread_cpu_seconds) / video.frames})
            print(f"round {r}: {rounds[-1]}", flush=True)
    if profile is not None:
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.profile)
        print(f"\nmain thread of the last end-to-end run, top {args.profile} by own time:\n{text.getvalue()}")
    return {"model": description, "frames": video.frames, "context": args.context, "outputs": describe_outputs(args),
            **{k: statistics.median(r[k] for r in rounds) for k in rounds[0]},
            "rounds": rounds}


# -------------------------------------------------------------------------------------------------------- stages


def process_cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and its reaped children (ffmpeg encoders)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_stages(args: argparse.Namespace, video: TestVideo) -> dict[str, float]:
    """CPU ms per frame of each stage, run alone: decoding, the session (model, and the rest on the model's thread, on
    the caller's thread and on the reader threads), each output format. Run with ``--threads 1`` (torch's worker
    threads would count as the reader threads' otherwise)."""
    predictor, _ = build_predictor(args, args.config)
    config = PropagationConfig(context=args.context, mode="joint")
    stages = {}
    start = process_cpu_seconds()
    for _ in VideoFileSource(video.mp4).read(range(video.frames)):
        pass
    stages["decoding the H.264 mp4 (decord)"] = process_cpu_seconds() - start
    with torch.inference_mode():
        inputs = prepared_frames(predictor, video)
        model_only_seconds(predictor, inputs[:args.context + 2], args.context)  # warm-up
        start = process_cpu_seconds()
        model_only_seconds(predictor, inputs, args.context)
        stages["model (the session's paint calls)"] = process_cpu_seconds() - start
    session = VideoSession(predictor, video.mp4, config)
    session.add_mask(0, video.mask)
    model = stages["model (the session's paint calls)"]
    with PaintTimer(predictor) as model_thread, CpuTimer() as cpu:
        results = [(pred.labels, pred.frame) for pred in session.propagate("forward")]
    stages["session, model's thread besides the model (prompt batches, painting -> slots at model resolution)"] = (
        model_thread.thread_cpu_seconds - model)
    stages["session, caller's thread (slots -> ids at full resolution, result store)"] = cpu.caller_seconds
    stages["session, reader threads besides decoding (resizing frames for the model, re-seeking)"] = (
        cpu.total_seconds - cpu.caller_seconds - model_thread.thread_cpu_seconds
        - stages["decoding the H.264 mp4 (decord)"])
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-stages-", dir=args.scratch) as out:
        formats = output_spec(args, Path(out)).writers(video.mp4.stem, davis_palette(), session.fps, session.objects)
        writing = [0.0] * len(formats)
        # frame by frame through every format, as run_video's writer thread goes, so that the alpha outputs share each
        # frame's mattes (the first one to ask computes them); an encoder process's CPU counts when ``close`` reaps it
        for index, (labels, frame) in enumerate(results):
            for k, fmt in enumerate(formats):
                start = process_cpu_seconds()
                fmt.write(index, f"{index:05d}", labels, frame if fmt.needs_frame else None)
                writing[k] += process_cpu_seconds() - start
        for k, fmt in enumerate(formats):
            start = process_cpu_seconds()
            fmt.close()
            writing[k] += process_cpu_seconds() - start
            stages[f"writing: {type(fmt).__name__}"] = writing[k]
    return {stage: 1000 * seconds / video.frames for stage, seconds in stages.items()}


# -------------------------------------------------------------------------------------------------------- memory


def rss_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in KiB, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: one ``run_video`` on ``args.child_video``, then print the RSS figures as JSON."""
    video = TestVideo(Path(args.child_video), Path(args.child_mask), args.child_frames)
    predictor, model = build_predictor(args, args.memory_config or args.config)
    before = rss_kib("VmRSS")
    samples: list[int] = []  # VmRSS every 0.2 s during the run
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            samples.append(rss_kib("VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-mem-", dir=args.scratch) as out:
        config = PropagationConfig(context=args.context, mode="joint", store_budget_mb=args.store_budget_mb)
        seconds = end_to_end_seconds(predictor, video, output_spec(args, Path(out)), config)
    done.set()
    sampler.join()
    quarters = [max(samples[len(samples) * q // 4:max(len(samples) * (q + 1) // 4, len(samples) * q // 4 + 1)])
                / 1024 for q in range(4)] if samples else []
    print(json.dumps({"model": model, "frames": video.frames, "seconds": seconds, "rss_before_mib": before / 1024,
                      "rss_quarters_mib": quarters, "peak_mib": rss_kib("VmHWM") / 1024}))


def bench_memory(args: argparse.Namespace, videos: list[TestVideo]) -> list[dict]:
    rows = []
    for video in videos:
        command = [sys.executable, __file__, "--child-video", str(video.mp4), "--child-mask", str(video.mask),
                   "--child-frames", str(video.frames), "--model", args.model, "--device", args.device,
                   "--context", str(args.context), "--store-budget-mb", str(args.store_budget_mb)]
        for flag, value in (("--config", args.config), ("--memory-config", args.memory_config),
                            ("--dtype", args.dtype), ("--threads", args.threads), ("--scratch", args.scratch)):
            if value is not None:
                command += [flag, str(value)]
        command += ["--overlay"] if args.overlay else []
        command += ["--editor-outputs"] if args.editor_outputs else []
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"memory run on {video.mp4} failed:\n{result.stderr}")
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(f"memory: {rows[-1]}", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="weights to load: a shipped name or a folder")
    ap.add_argument("--config", choices=sorted(PRESETS), help="benchmark a freshly initialised preset instead")
    ap.add_argument("--memory-config", choices=sorted(PRESETS),
                    help="model of the memory runs (default: the speed model); e.g. test-tiny to make them quick")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), help="default: the predictor's pick for the device")
    ap.add_argument("--compile", action="store_true", help="torch.compile the painting function")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 on a machine busy with other "
                                                "work, where OpenMP threads that wait on each other stall)")
    ap.add_argument("--context", type=int, default=PAPER_CONTEXT,
                    help="previous predictions as prompts (joint mode, the paper's default)")
    ap.add_argument("--frames", type=int, default=100, help="length of the speed video")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved end-to-end / model-only rounds")
    ap.add_argument("--overlay", action="store_true", help="also write the H.264 overlay video")
    ap.add_argument("--editor-outputs", action="store_true",
                    help="also write per-object matte PNG sequences, a ProRes 4444 alpha .mov and EXR channels")
    ap.add_argument("--memory-frames", type=int, nargs=2, default=(300, 3000), metavar=("SHORT", "LONG"))
    ap.add_argument("--store-budget-mb", type=float, default=PropagationConfig.store_budget_mb,
                    help="memory runs: RAM the session keeps results in before spilling them to disk")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--stages", action="store_true", help="CPU ms per frame of each stage, each run alone")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print the N functions the main thread spends most time in (last end-to-end round)")
    ap.add_argument("--videos", type=Path, default=Path(tempfile.gettempdir()) / "seggpt-vos-bench",
                    help="cache folder of the test videos")
    ap.add_argument("--scratch", type=Path,
                    help="folder the outputs are written under (default: the system's temp folder). Creating a file "
                         "costs kernel CPU that depends on the file system: a tmpfs such as /dev/shm leaves the "
                         "encoders alone")
    for hidden in ("--child-video", "--child-mask"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    ap.add_argument("--child-frames", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    keep_freed_blocks()  # as the command line does, so that the stages and the model-only runs see its allocator too
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_video:
        memory_child(args)
        return

    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "?")
    print(f"device {args.device} [{where}], {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)", flush=True)
    speed = None if args.skip_speed else bench_speed(args, make_video(args.videos, args.frames))
    stages = bench_stages(args, make_video(args.videos, args.frames)) if args.stages else None
    memory = None if args.skip_memory else bench_memory(args, [make_video(args.videos, n)
                                                             for n in args.memory_frames])

    print()
    if speed is not None:
        outputs = speed["outputs"]
        print(f"Speed: {speed['frames']} frames of 854x480 H.264, context {speed['context']}, writing {outputs}; "
              f"model {speed['model']}; each column the median of {len(speed['rounds'])} interleaved rounds "
              "(ratio: min-max over rounds in brackets).\n")
        target = 0.9 if args.editor_outputs else 0.95
        print(f"| end-to-end frames/s | model-only frames/s | end-to-end / model-only (target >= {target}) | "
              "model's share of the end-to-end wall time | paint time end-to-end / model-only | "
              "CPU ms/frame: model thread / caller's thread / background |")
        print("|---|---|---|---|---|---|")
        ratios = [r["ratio"] for r in speed["rounds"]]
        print(f"| {speed['e2e_fps']:.2f} | {speed['model_fps']:.2f} | {speed['ratio']:.3f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) | {speed['model_share']:.3f} | {speed['paint_slowdown']:.3f} | "
              f"{speed['model_thread_cpu_ms']:.1f} / {speed['caller_cpu_ms']:.1f} / "
              f"{speed['background_cpu_ms']:.1f} |\n")
    if stages is not None:
        print(f"Stages: CPU ms per frame of each stage run alone ({args.frames} frames of 854x480 H.264, writing "
              f"{describe_outputs(args)}).\n")
        print("| stage | CPU ms/frame |\n|---|---|")
        for stage, ms in stages.items():
            print(f"| {stage} | {ms:.1f} |")
        print()
    if memory is not None:
        short, long = memory
        print(f"Memory: peak RSS of one process running the pipeline on an 854x480 H.264 video, writing "
              f"{describe_outputs(args)}; "
              f"model {short['model']}.\n")
        print("| frames | seconds | RSS before the run (MiB) | highest RSS in each quarter of the run (MiB) | peak RSS "
              "(MiB) |")
        print("|---|---|---|---|---|")
        for row in memory:
            quarters = " / ".join(f"{q:.0f}" for q in row["rss_quarters_mib"])
            print(f"| {row['frames']} | {row['seconds']:.0f} | {row['rss_before_mib']:.0f} | {quarters} | "
                  f"{row['peak_mib']:.0f} |")
        growth = long["peak_mib"] / short["peak_mib"] - 1
        print(f"\npeak RSS, {long['frames']} vs {short['frames']} frames: {growth:+.1%} (target within 5%)")


if __name__ == "__main__":
    try:
        main()
    except InputError as error:
        sys.exit(f"error: {error}")
