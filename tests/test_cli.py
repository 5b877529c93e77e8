"""The command line end to end: outputs on disk, resume, shards, torchrun, and one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vos.cli import main

REPO = Path(__file__).resolve().parents[1]


def pngs(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.array(Image.open(p)) for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="module")
def small_davis(davis_subset) -> Path:
    return davis_subset("davis-mini-multi", {"blackswan-x3": 4, "libby-x2": 3})


def test_segment_writes_palette_masks(shared_data, tiny_checkpoint, tmp_path):
    seq = shared_data / "davis-mini/JPEGImages/480p/dog"
    mask = shared_data / "davis-mini/Annotations/480p/dog/00000.png"
    rc = main(["segment", "--prompt-image", str(seq / "00000.jpg"), "--prompt-mask", str(mask),
               "--input", str(seq / "00005.jpg"), str(seq / "00009.jpg"), "--output", str(tmp_path),
               "--model", str(tiny_checkpoint), "--dtype", "fp32"])
    assert rc == 0
    out = Image.open(tmp_path / "00005.png")
    assert out.mode == "P" and out.size == (854, 480) and (tmp_path / "00009.png").is_file()


def test_propagate_writes_every_output(davis_subset, tiny_checkpoint, tmp_path, capsys):
    root = davis_subset("davis-mini", {"dog": 5})
    frames = root / "JPEGImages/480p/dog"
    rc = main(["propagate", str(frames), "--masks", str(root / "Annotations/480p/dog/00000.png"),
               "--out", str(tmp_path / "masks"), "--overlay", str(tmp_path / "overlay.mp4"),
               "--alpha", str(tmp_path / "alpha"), "--rle", str(tmp_path / "dog.json"),
               "--model", str(tiny_checkpoint), "--context", "2"])
    assert rc == 0
    masks = pngs(tmp_path / "masks/dog")
    assert list(masks) == ["00000", "00001", "00002", "00003", "00004"]
    first = np.array(Image.open(root / "Annotations/480p/dog/00000.png"))
    np.testing.assert_array_equal(masks["00000"], first)  # the given frame is written as given
    assert Image.open(tmp_path / "masks/dog/00003.png").getpalette()[:6] == \
        Image.open(root / "Annotations/480p/dog/00000.png").getpalette()[:6]  # the input palette is kept
    assert (tmp_path / "overlay.mp4").stat().st_size > 1000
    assert (tmp_path / "alpha/dog/object_1/dog_object_1.0000.png").is_file()
    assert len(json.loads((tmp_path / "dog.json").read_text())["images"]) == 5
    assert "5 frames" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing_input", "mask_size", "empty_mask", "mask_past_end", "bad_model",
                                  "bad_window"])
def test_bad_input_is_one_line_and_exit_2(shared_data, tiny_checkpoint, tmp_path, capsys, case):
    frames = shared_data / "davis-mini/JPEGImages/480p/dog"
    mask = shared_data / "davis-mini/Annotations/480p/dog/00000.png"
    args = ["propagate", str(frames), "--masks", str(mask), "--out", str(tmp_path), "--model", str(tiny_checkpoint)]
    if case == "missing_input":
        args[1] = str(tmp_path / "nope.mp4")
    elif case == "mask_size":
        Image.fromarray(np.ones((10, 10), np.uint8)).save(tmp_path / "small.png")
        args[3] = str(tmp_path / "small.png")
    elif case == "empty_mask":
        Image.fromarray(np.zeros((480, 854), np.uint8)).save(tmp_path / "empty.png")
        args[3] = str(tmp_path / "empty.png")
    elif case == "mask_past_end":
        args += ["--mask-at", "500", str(mask)]
    elif case == "bad_window":
        args += ["--window-margin", "0"]
    else:
        (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
        args[-1] = str(tmp_path / "bad.pth")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and "error:" in err


def test_run_davis_resumes_and_shards(small_davis, tiny_checkpoint, tmp_path, capsys):
    common = ["--root", str(small_davis), "--model", str(tiny_checkpoint), "--context", "2"]
    assert main(["run-davis", *common, "--out", str(tmp_path / "all")]) == 0
    full = {seq: pngs(tmp_path / "all" / seq) for seq in ("blackswan-x3", "libby-x2")}
    assert [len(v) for v in full.values()] == [4, 3]
    # Interrupted run: a video with a missing frame is redone, a complete one is skipped; results are identical.
    (tmp_path / "all/libby-x2/00002.png").unlink()
    capsys.readouterr()
    assert main(["run-davis", *common, "--out", str(tmp_path / "all")]) == 0
    assert "blackswan-x3: complete, skipped" in capsys.readouterr().out
    for name, mask in pngs(tmp_path / "all/libby-x2").items():
        np.testing.assert_array_equal(mask, full["libby-x2"][name])
    # Shards by hand cover each video once.
    for i in range(2):
        assert main(["run-davis", *common, "--out", str(tmp_path / "sharded"), "--shard", f"{i}/2"]) == 0
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir() if p.is_dir()) == ["blackswan-x3", "libby-x2"]
    assert len(list((tmp_path / "all").glob("timing-0.jsonl"))) == 1


def test_run_davis_under_torchrun_two_cpu_processes(small_davis, tiny_checkpoint, tmp_path):
    out = tmp_path / "dist"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "vos.cli", "run-davis", "--root", str(small_davis), "--out", str(out),
           "--model", str(tiny_checkpoint), "--context", "2"]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out.glob("timing-*.jsonl")) == ["timing-0.jsonl", "timing-1.jsonl"]
    ref = tmp_path / "single"
    assert main(["run-davis", "--root", str(small_davis), "--out", str(ref), "--model", str(tiny_checkpoint),
                 "--context", "2"]) == 0
    for seq in ("blackswan-x3", "libby-x2"):
        got, want = pngs(out / seq), pngs(ref / seq)
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def test_run_ytvos_writes_meta_frames_and_merges_late_objects(tiny_checkpoint, tmp_path, youtube_vos):
    import zipfile

    split = youtube_vos(tmp_path / "yt")
    out = tmp_path / "results"
    assert main(["run-ytvos", "--root", str(split), "--out", str(out), "--model", str(tiny_checkpoint),
                 "--frames-root", str(tmp_path / "yt/all_frames/JPEGImages"), "--context", "2"]) == 0
    masks = pngs(out / "vid1")
    assert list(masks) == [f"{i:05d}" for i in range(0, 30, 5)]  # only the frames meta.json asks for
    late = np.array(Image.open(split / "Annotations/vid1/00020.png"))
    assert ((masks["00020"] == 2) == (late == 2)).all()  # the new object as given, merged into the prediction
    assert not (masks["00015"] == 2).any()  # ... and absent before it appears
    assert main(["eval-ytvos", "--split-root", str(split), "--results", str(out),
                 "--zip", str(tmp_path / "submission.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "submission.zip") as z:
        assert sorted(z.namelist()) == [f"Annotations/vid1/{i:05d}.png" for i in range(0, 30, 5)]


@pytest.mark.parametrize("argv, near", [(["propagate", "v.mp4", "--ouput", "x"], "--out"),
                                        (["segment", "--input", "a.jpg", "--ouput", "x"], "--output"),
                                        (["eval", "--davis-root", "d", "--results", "r", "--sequnces", "a"],
                                         "--sequences")])
def test_unknown_flag_is_reported_by_the_subcommand_with_the_near_miss(argv, near, capsys):
    """One line (the project's rule for bad input), from the subcommand that got the flag, pointing at its --help."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"seggpt-vos {argv[0]}: error: ")
    assert err.endswith(f"; did you mean {near} instead of {argv[-2]}? (see 'seggpt-vos {argv[0]} --help')")


def test_propagate_without_an_output_flag_writes_masks_to_the_default_folder(davis_subset, tiny_checkpoint, tmp_path,
                                                                              monkeypatch, capsys):
    root = davis_subset("davis-mini", {"dog": 3})
    monkeypatch.chdir(tmp_path)
    rc = main(["propagate", str(root / "JPEGImages/480p/dog"), "--masks", str(root / "Annotations/480p/dog/00000.png"),
               "--model", str(tiny_checkpoint), "--context", "1"])
    assert rc == 0
    assert list(pngs(tmp_path / "seggpt-vos-out/dog")) == ["00000", "00001", "00002"]
    out = capsys.readouterr().out
    assert "no output flag given: writing masks to seggpt-vos-out/" in out
    assert out.strip().endswith(str(Path("seggpt-vos-out") / "dog"))


def test_outline_overlay_leaves_the_inside_of_objects_untinted(davis_subset, tiny_checkpoint, tmp_path, monkeypatch):
    """--overlay-style outline, decoded with decord: frame 0 (the given mask, written as given) shows the frame inside
    the object and a red band on its edge; no masks are written when only an overlay is asked for."""
    import cv2
    import decord

    from vos.readers import read_image

    root = davis_subset("davis-mini", {"dog": 2})
    monkeypatch.chdir(tmp_path)
    mask_png = root / "Annotations/480p/dog/00000.png"
    assert main(["propagate", str(root / "JPEGImages/480p/dog"), "--masks", str(mask_png),
                 "--overlay", "o.mp4", "--overlay-style", "outline", "--model", str(tiny_checkpoint),
                 "--context", "1"]) == 0
    assert not (tmp_path / "seggpt-vos-out").exists()
    video = decord.VideoReader(str(tmp_path / "o.mp4")).get_batch([0]).asnumpy()[0].astype(int)
    frame = read_image(root / "JPEGImages/480p/dog/00000.jpg").astype(int)
    mask = np.array(Image.open(mask_png)) == 1
    inside = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    band = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.abs(video[inside] - frame[inside]).mean() < 4
    red = video[band]  # DAVIS colour of object 1: (128, 0, 0)
    assert red[:, 0].mean() > red[:, 1].mean() + 50 and np.abs(red - [128, 0, 0]).mean() < 40
