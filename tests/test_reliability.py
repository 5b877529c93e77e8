"""The reliability promises, one test (or parametrised family) per fault class of issue 19:

1. no loader runs code from a pickle; 2. tuning resumes exactly after SIGKILL and after Ctrl-C; 3. outputs are
checked before any work and OS errors while writing are one line that keeps finished files; 4. two runs on one output
folder share the work and never delete each other's files in flight; 5. size-like settings are bounded; 6. every
numeric flag (found from the parsers themselves) and model config is validated at the boundary; 7. outputs never
silently escape, clash or mix settings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seggpt_core.errors import InputError
from vos.cli import main
from vos.cli.arguments import MAX_CONTEXT, NUMERIC_TYPES, FrameAndPath
from vos.cli.main import build_parser
from vos.locks import OutputLock
from vos.writers import completed_frames

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err and "error:" in err, err
    return err


def load_train_script():
    spec = importlib.util.spec_from_file_location("train_script", REPO / "scripts" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dog(davis_subset) -> Path:
    return davis_subset("davis-mini", {"dog": 3})


# --- 1. no code from pickles ------------------------------------------------------------------------------------------


class Payload:
    """Unpickling this creates ``marker``: the proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@pytest.mark.parametrize("path", ["model", "tuned_prompt", "tune_resume", "train_resume"])
def test_a_pickle_with_code_runs_nothing_in_any_loader(tmp_path, path, dog, tiny_checkpoint, capsys):
    marker = tmp_path / "pwned"
    payload = {"model": Payload(marker), "step": 3}
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    model = ["--model", str(tiny_checkpoint), "--dtype", "fp32"]
    if path == "model":
        torch.save(payload, tmp_path / "evil.pth")
        rc = main(["propagate", str(frames), "--masks", str(masks / "00000.png"), "--out", str(tmp_path / "o"),
                   "--model", str(tmp_path / "evil.pth")])
    elif path == "tuned_prompt":
        torch.save(payload, tmp_path / "evil.pt")
        rc = main(["propagate", str(frames), "--prompt", str(tmp_path / "evil.pt"), "--out", str(tmp_path / "o"),
                   *model])
    elif path == "tune_resume":
        torch.save(payload, tmp_path / "p.pt.resume")
        rc = main(["tune", "--images", str(frames / "00000.jpg"), "--masks", str(masks / "00000.png"), "--steps", "1",
                   "--out", str(tmp_path / "p.pt"), "--resume", *model])
    else:
        (tmp_path / "run").mkdir()
        torch.save(payload, tmp_path / "run" / "checkpoint.pt")
        rc = load_train_script().main(["--out", str(tmp_path / "run"), "--preset", "test-tiny", "--steps", "1",
                                       "--precision", "fp32", "--no-progress"])
    assert rc == 2
    assert "checkpoint" in one_line_error(capsys) or path == "tuned_prompt"
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(Payload(marker))) is None and marker.exists()  # the payload is live


# --- 2. tuning resumes exactly after SIGKILL and Ctrl-C ---------------------------------------------------------------


def ctrl_c_interrupts() -> None:
    """In a child before it starts Python: SIGINT back to its default, so Python installs KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_tuning_resumes_to_the_identical_prompt_after_sigkill_and_ctrl_c(dog, tiny_checkpoint, tmp_path):
    """The signal is sent once the first checkpoint exists; 100 steps (about a second with the tiny model) leave it time
    to land mid-run. The child gets Ctrl-C's default handling back: started from a shell's background job it would
    inherit SIGINT ignored, finish its run and exit 0 (it did, twice, in a CI run launched with ``&``)."""
    from seggpt_core.tuning import TunedPrompt

    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    base = [sys.executable, "-m", "vos.cli", "tune", "--images", str(frames / "00000.jpg"), str(frames / "00002.jpg"),
            "--masks", str(masks / "00000.png"), str(masks / "00002.png"), "--steps", "100", "--save-every", "2",
            "--lr", "0.1", "--tune-mask", "--seed", "5", "--model", str(tiny_checkpoint), "--dtype", "fp32",
            "--device", "cpu"]

    def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, "--out", str(out), *extra], env=ENV, capture_output=True, text=True,
                              timeout=600)

    assert run(tmp_path / "ref.pt").returncode == 0
    reference = TunedPrompt.load(tmp_path / "ref.pt")
    for sig in (signal.SIGKILL, signal.SIGINT):
        out = tmp_path / f"{sig.name}.pt"
        resume = out.with_name(out.name + ".resume")
        child = subprocess.Popen([*base, "--out", str(out)], env=ENV, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_interrupts)
        deadline = time.monotonic() + 300
        while not resume.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the first periodic checkpoint (step 2): interrupt mid-run, inside some step
        child.send_signal(sig)
        _, err = child.communicate(timeout=300)
        assert child.returncode == (-9 if sig == signal.SIGKILL else 130), err[-2000:]
        assert not out.exists() and resume.exists()
        result = run(out, "--resume")
        assert result.returncode == 0, result.stderr[-2000:]
        tuned = TunedPrompt.load(out)
        assert torch.equal(tuned.image, reference.image) and torch.equal(tuned.target, reference.target), sig.name
        assert tuned.info["final_loss"] == reference.info["final_loss"]


def test_an_interrupt_inside_the_optimiser_step_saves_the_step_before(tmp_path, monkeypatch):
    """Ctrl-C after Adam has moved the prompt but before the step is counted: the checkpoint must hold the state
    before that step, not the half-applied one (which resumed to a different prompt)."""
    from seggpt_core.tuning import TuningConfig, tune_prompt
    from tests.test_tuning import examples, tiny_predictor

    predictor = tiny_predictor()
    config = TuningConfig(steps=6, lr=0.1, batch_size=2, seed=3, tune_target=True, save_every=100)
    reference = tune_prompt(predictor, examples(3), config, progress=False)
    adam_step, calls = torch.optim.Adam.step, []

    def step_then_interrupt(self, *args, **kwargs):
        adam_step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.resume"
    with monkeypatch.context() as m:
        m.setattr(torch.optim.Adam, "step", step_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            tune_prompt(predictor, examples(3), config, checkpoint=ckpt, progress=False)
    assert torch.load(ckpt, weights_only=True)["step"] == 3
    resumed = tune_prompt(predictor, examples(3), config, checkpoint=ckpt, resume=True, progress=False)
    assert torch.equal(resumed.image, reference.image) and torch.equal(resumed.target, reference.target)


# --- 3. outputs checked before any work; OS errors while writing are one line ----------------------------------------


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder on a read-only bind mount (root ignores permissions, not a read-only file system)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.mark.parametrize("case", ["rle_is_dir", "out_is_file", "under_a_file", "read_only", "tune_out_is_dir",
                                  "eval_csv_dir_is_file", "full_disk", "segment_output_is_file"])
def test_output_problems_are_found_before_any_work(case, dog, tmp_path, capsys, request, monkeypatch):
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    # A model that does not exist: the output check must come first, so the error is about the output.
    propagate = ["propagate", str(frames), "--masks", str(masks / "00000.png"), "--model", str(tmp_path / "none.pth")]
    (tmp_path / "file.txt").write_text("x")
    expect = "--out"
    if case == "rle_is_dir":
        args, expect = propagate + ["--rle", str(tmp_path)], "is a folder"
    elif case == "out_is_file":
        args, expect = propagate + ["--out", str(tmp_path / "file.txt")], "is a file"
    elif case == "under_a_file":
        args, expect = propagate + ["--overlay", str(tmp_path / "file.txt" / "o.mp4")], "file.txt is not a folder"
    elif case == "read_only":
        ro = request.getfixturevalue("read_only_dir")
        args, expect = propagate + ["--out", str(ro / "masks")], "Read-only file system"
    elif case == "tune_out_is_dir":
        args = ["tune", "--images", str(frames / "00000.jpg"), "--masks", str(masks / "00000.png"), "--out",
                str(tmp_path), "--model", str(tmp_path / "none.pth")]
        expect = "is a folder"
    elif case == "eval_csv_dir_is_file":
        args = ["eval", "--davis-root", str(dog), "--results", str(tmp_path / "no-results"), "--csv-dir",
                str(tmp_path / "file.txt")]
        expect = "--csv-dir"
    elif case == "full_disk":
        from collections import namedtuple

        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr("vos.outputs.shutil.disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
        args, expect = propagate + ["--out", str(tmp_path / "m")], "MB free"
    else:
        args = ["segment", "--prompt-image", str(frames / "00000.jpg"), "--prompt-mask", str(masks / "00000.png"),
                "--input", str(frames / "00001.jpg"), "--output", str(tmp_path / "file.txt"), "--model",
                str(tmp_path / "none.pth")]
        expect = "is a file"
    assert main(args) == 2
    err = one_line_error(capsys)
    assert expect in err and "none.pth" not in err


def test_a_write_error_mid_run_is_one_line_and_keeps_finished_frames(dog, tiny_checkpoint, tmp_path):
    """RLIMIT_FSIZE makes each .npy (410 kB) fail with EFBIG while the small PNGs before it are written."""
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)); "
            "from vos.cli import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "propagate", str(frames), "--masks",
                             str(masks / "00000.png"), "--out", str(tmp_path / "masks"), "--numpy",
                             str(tmp_path / "npy"), "--model", str(tiny_checkpoint), "--context", "1"],
                            env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-2000:]
    err = [line for line in result.stderr.replace("\r", "\n").splitlines() if "error:" in line]  # (progress bars)
    assert len(err) == 1 and "Traceback" not in result.stderr
    assert "written" in err[0]  # numpy's message: "N requested and M written"
    assert str(tmp_path / "npy" / "dog") in err[0] and "kept" in err[0]
    assert (tmp_path / "masks/dog/00000.png").is_file()  # finished before the failure, and complete
    assert np.array(Image.open(tmp_path / "masks/dog/00000.png")).shape == (480, 854)
    assert not [p for p in (tmp_path / "npy/dog").iterdir()]  # no partial .npy left behind


# --- 4. two runs on one output folder ---------------------------------------------------------------------------------


def hold_lock(target: Path) -> subprocess.Popen:
    """Another live process holding ``target``'s lock and writing a temp file in flight, as a run does (a frame in
    the video folder ``target``, or ``target``'s own temp when it is a file name)."""
    file = f"Path({str(target)!r})" if target.suffix else f"Path({str(target)!r}) / '00001.png'"
    code = (f"import sys, time; from pathlib import Path; from vos.locks import OutputLock; "
            f"from vos.writers import temp_path; lock = OutputLock({str(target)!r}); assert lock.acquire(); "
            f"tmp = temp_path({file}); tmp.parent.mkdir(parents=True, exist_ok=True); tmp.write_bytes(b'in flight'); "
            f"print(tmp, flush=True); time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, text=True)
    child.temp = Path(child.stdout.readline().strip())
    return child


def test_two_runs_on_one_folder_split_the_videos_and_spare_each_others_files(small_davis, tiny_checkpoint,
                                                                            tmp_path, capsys):
    out = tmp_path / "res"
    common = ["run-davis", "--root", str(small_davis), "--out", str(out), "--model", str(tiny_checkpoint),
              "--context", "1"]
    holder = hold_lock(out / "blackswan-x3")
    try:
        assert main(common) == 0
        assert "blackswan-x3: being written by another run" in capsys.readouterr().out
        assert holder.temp.exists()  # the live run's file in flight survived our start-up clean-up
        assert len(completed_frames(out / "libby-x2")) == 3
        assert not completed_frames(out / "blackswan-x3")
    finally:
        holder.kill()
        holder.wait()
    # The holder died (SIGKILL): its lock lapses and its temp file is stale; the next run takes both over.
    assert main(common) == 0
    assert len(completed_frames(out / "blackswan-x3")) == 4 and not holder.temp.exists()
    # Two processes started together on a fresh folder: every video is computed exactly once.
    fresh = [a if a != str(out) else str(tmp_path / "fresh") for a in common]
    procs = [subprocess.Popen([sys.executable, "-m", "vos.cli", *fresh], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    timing = (tmp_path / "fresh" / "timing-0.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["video"] for line in timing) == ["blackswan-x3", "libby-x2"]
    assert not list((tmp_path / "fresh").glob(".*.lock"))


def test_propagate_refuses_an_output_another_run_is_writing(dog, tiny_checkpoint, tmp_path, capsys):
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    holder = hold_lock(tmp_path / "o.mp4")
    try:
        assert main(["propagate", str(frames), "--masks", str(masks / "00000.png"), "--overlay",
                     str(tmp_path / "o.mp4"), "--model", str(tiny_checkpoint)]) == 2
        assert f"pid {holder.pid}" in one_line_error(capsys)
    finally:
        holder.kill()
        holder.wait()


# --- 5. size-like settings are bounded --------------------------------------------------------------------------------


def test_context_is_bounded_with_the_limit_in_the_message(capsys):
    assert main(["propagate", "video.mp4", "--context", str(MAX_CONTEXT + 1)]) == 2
    assert f"0..{MAX_CONTEXT}" in one_line_error(capsys)
    args = build_parser().parse_args(["propagate", "video.mp4", "--context", str(MAX_CONTEXT)])
    assert args.context == MAX_CONTEXT


# --- 6. every argument and config validated at the boundary -----------------------------------------------------------


def numeric_flags(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(sub-command path, flag) of every numeric option, found from the parsers' own definitions."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += numeric_flags(sub, prefix + (name,))
        elif action.option_strings and (action.type in NUMERIC_TYPES or isinstance(action, FrameAndPath)
                                        or getattr(action.type, "__name__", "") == "_positive_int"):
            found.append((prefix, action.option_strings[-1]))
        elif action.option_strings:
            assert action.type not in (int, float), f"{' '.join(prefix)} {action.option_strings}: unchecked number"
            default = action.default
            assert not (isinstance(default, (int, float)) and not isinstance(default, bool)), \
                f"{' '.join(prefix)} {action.option_strings}: numeric default without a checked type"
    return found


SEGGPT_FLAGS = numeric_flags(build_parser())
TRAIN_FLAGS = numeric_flags(load_train_script().build_parser())


def test_the_fuzzed_flags_are_all_there():
    flags = {f"{' '.join(p)} {f}" for p, f in SEGGPT_FLAGS}
    assert {"propagate --context", "tune --lr", "tune --seed", "demo --seed", "run-davis --window-min",
            "propagate --mask-at", "eval --workers"} <= flags
    assert len(TRAIN_FLAGS) >= 18


def out_of_range(command: tuple[str, ...], flag: str) -> str:
    """A value the flag's own type refuses (``-1`` for frame indices)."""
    parser = build_parser()
    for name in command:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    action = next(a for a in parser._actions if flag in a.option_strings)
    return getattr(action.type, "out_of_range", "-1")


@pytest.mark.parametrize("value", ["nan", "inf", "out-of-range", "abc"])
@pytest.mark.parametrize("command,flag", SEGGPT_FLAGS, ids=[f"{' '.join(p)} {f}" for p, f in SEGGPT_FLAGS])
def test_every_numeric_flag_refuses_non_numbers_and_out_of_range(command, flag, value, capsys):
    extra = ["x.png"] if flag == "--mask-at" else []
    value = out_of_range(command, flag) if value == "out-of-range" else value
    assert main([*command, flag, value, *extra]) == 2
    assert flag in one_line_error(capsys)


@pytest.mark.parametrize("value", ["nan", "-inf", "-1", "1e400", "abc"])
@pytest.mark.parametrize("flag", [f for _, f in TRAIN_FLAGS])
def test_every_numeric_training_flag_is_checked(flag, value, capsys):
    parser = load_train_script().build_parser()
    nargs = 2 if flag == "--object-radius" else 1
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--out", "x", flag, *[value] * nargs])
    assert exit_info.value.code == 2 and flag in one_line_error(capsys)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda", "cuda:7", "mps"])
def test_devices_this_machine_lacks_are_one_line(device, capsys):
    if device.startswith("cuda") and device != "cuda:x" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    assert main(["segment", "--input", "a.png", "--output", "o", "--device", device]) == 2
    assert "--device" in one_line_error(capsys)
    from seggpt_core.model import PRESETS, SegGPT
    from seggpt_core.predictor import SegGPTPredictor

    with pytest.raises(InputError):  # the Python API refuses it the same way
        SegGPTPredictor(SegGPT(PRESETS["test-tiny"]), device=device)


@pytest.mark.parametrize("config", ["{not json", "[1, 2]", '{"depth": "abc"}', '{"patch_size": 0}',
                                    '{"embed_dim": -64}', '{"drop_path_rate": NaN}', '{"image_size": [64]}',
                                    '{"embed_dim": 1000000, "num_heads": 1}', '{"tap_indices": [99]}'])
def test_a_corrupt_or_impossible_config_json_is_one_line(config, tiny_checkpoint, tmp_path, dog, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").symlink_to(tiny_checkpoint / "model.safetensors")
    good = json.loads((tiny_checkpoint / "config.json").read_text())
    try:  # a field of the good config made impossible, or the text as is when it is no JSON object
        text = json.dumps({**good, **json.loads(config)})
    except (ValueError, TypeError):
        text = config
    (model / "config.json").write_text(text)
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    assert main(["segment", "--prompt-image", str(frames / "00000.jpg"), "--prompt-mask", str(masks / "00000.png"),
                 "--input", str(frames / "00001.jpg"), "--output", str(tmp_path / "o"), "--model", str(model)]) == 2
    err = one_line_error(capsys)
    assert "config.json" in err or "does not fit the model config" in err


def test_images_beyond_the_pixel_limit_are_one_line(dog, tmp_path, capsys):
    """A decompression bomb (a few hundred kB of PNG, 196 M pixels) as an image or as a mask."""
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    Image.new("L", (14000, 14000)).save(tmp_path / "bomb.png")
    for image, mask in ((tmp_path / "bomb.png", masks / "00000.png"), (frames / "00000.jpg", tmp_path / "bomb.png")):
        assert main(["segment", "--prompt-image", str(image), "--prompt-mask", str(mask), "--input",
                     str(frames / "00001.jpg"), "--output", str(tmp_path / "o"), "--model", "none.pth"]) == 2
        assert "bomb.png" in one_line_error(capsys)


# --- 7. outputs never escape, clash or mix settings -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["o.webm", "o.gif", "o", "o.avi"])
def test_overlay_containers_the_encoder_cannot_write_are_refused_up_front(name, dog, tmp_path, capsys):
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    assert main(["propagate", str(frames), "--masks", str(masks / "00000.png"), "--overlay", str(tmp_path / name),
                 "--model", str(tmp_path / "none.pth")]) == 2
    assert ".mp4" in one_line_error(capsys) and not (tmp_path / name).exists()


def test_names_that_leave_the_output_folder_are_refused(small_davis, tmp_path, tiny_checkpoint, capsys):
    assert main(["propagate", "v.mp4", "--name", "../../x", "--out", str(tmp_path)]) == 2
    assert "--name" in one_line_error(capsys)
    listing = small_davis / "ImageSets/2017/escape.txt"
    listing.write_text("../480p/libby-x2\n")  # a real sequence, reached through '..': OUT/../480p/libby-x2
    try:
        assert main(["run-davis", "--root", str(small_davis), "--split", "escape", "--out", str(tmp_path / "r"),
                     "--model", str(tiny_checkpoint)]) == 2
        assert "not a plain name" in one_line_error(capsys)
        assert not (tmp_path / "480p").exists()
    finally:
        listing.unlink()
    assert main(["run-davis", "--root", str(small_davis), "--split", "../x", "--out", str(tmp_path / "r")]) == 2
    assert "--split" in one_line_error(capsys)


def test_inputs_whose_results_would_clash_are_refused(dog, tmp_path, capsys):
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    (tmp_path / "a").mkdir()
    same_stem = tmp_path / "a" / "00001.png"
    Image.open(frames / "00001.jpg").save(same_stem)
    seg = ["segment", "--prompt-image", str(frames / "00000.jpg"), "--prompt-mask", str(masks / "00000.png"),
           "--model", str(tmp_path / "none.pth")]
    assert main([*seg, "--input", str(frames / "00001.jpg"), str(same_stem), "--output", str(tmp_path / "o")]) == 2
    err = one_line_error(capsys)
    assert str(frames / "00001.jpg") in err and str(same_stem) in err
    assert main([*seg, "--input", str(same_stem), "--output", str(tmp_path / "a")]) == 2  # would overwrite the input
    assert "is also an input" in one_line_error(capsys)
    assert main(["propagate", str(frames), "--masks", str(masks / "00000.png"), "--overlay", str(tmp_path / "x.mp4"),
                 "--rle", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "none.pth")]) == 2
    assert "both --overlay and --rle" in one_line_error(capsys)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"precious")
    for extra in (["--overlay", str(video)], ["--rle", str(masks / "00000.png")]):  # an output that is an input
        assert main(["propagate", str(video), "--masks", str(masks / "00000.png"), *extra]) == 2
        assert "is also an input" in one_line_error(capsys)
    assert video.read_bytes() == b"precious"
    png_frames = tmp_path / "pngs" / "clip"  # frames as PNGs, and --out their parent: masks would replace them
    png_frames.mkdir(parents=True)
    for i in range(2):
        Image.open(frames / f"{i:05d}.jpg").save(png_frames / f"{i:05d}.png")
    assert main(["propagate", str(png_frames), "--masks", str(masks / "00000.png"), "--out", str(png_frames.parent),
                 "--model", str(tmp_path / "none.pth")]) == 2
    assert "is also an input" in one_line_error(capsys)
    assert main(["tune", "--images", str(frames / "00000.jpg"), "--masks", str(masks / "00000.png"), "--out",
                 str(masks / "00000.png")]) == 2
    assert "is also an input" in one_line_error(capsys)


@pytest.fixture(scope="module")
def small_davis(davis_subset) -> Path:
    return davis_subset("davis-mini-multi", {"blackswan-x3": 4, "libby-x2": 3})


def test_results_never_overwrite_the_dataset(small_davis, tiny_checkpoint, capsys):
    annotations = small_davis / "Annotations/480p"
    before = {p: p.read_bytes() for p in annotations.rglob("*.png")}
    assert main(["run-davis", "--root", str(small_davis), "--out", str(annotations), "--model",
                 str(tiny_checkpoint)]) == 2
    assert "is also an input" in one_line_error(capsys)
    assert {p: p.read_bytes() for p in annotations.rglob("*.png")} == before


def test_resuming_with_other_settings_is_refused_unless_overwrite(small_davis, tiny_checkpoint, tmp_path, capsys):
    common = ["run-davis", "--root", str(small_davis), "--out", str(tmp_path), "--model", str(tiny_checkpoint)]
    assert main([*common, "--context", "1"]) == 0
    (tmp_path / "libby-x2/00002.png").unlink()  # an interrupted run
    capsys.readouterr()
    assert main([*common, "--context", "2"]) == 2
    err = one_line_error(capsys)
    assert "propagation" in err and "--overwrite" in err
    assert not (tmp_path / "libby-x2/00002.png").exists()  # nothing computed with the other settings
    assert main([*common, "--context", "1", "--late-objects"]) == 2
    assert "late_objects" in one_line_error(capsys)
    assert main([*common, "--context", "1"]) == 0 and (tmp_path / "libby-x2/00002.png").exists()
    assert main([*common, "--context", "2", "--overwrite"]) == 0
    assert json.loads((tmp_path / "run-settings.json").read_text())["propagation"]["context"] == 2


def test_locks_are_taken_over_from_dead_processes_and_refused_from_live_ones(tmp_path):
    holder = hold_lock(tmp_path / "video")
    try:
        lock = OutputLock(tmp_path / "video")
        assert not lock.acquire() and lock.holder().startswith(f"pid {holder.pid}")
        with pytest.raises(InputError, match=f"pid {holder.pid}"):
            with OutputLock(tmp_path / "video"):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / ".video.lock").exists()  # left by the killed process ...
    with OutputLock(tmp_path / "video") as lock:  # ... and taken over
        assert lock.holder().startswith(f"pid {os.getpid()}")
    assert not (tmp_path / ".video.lock").exists()
