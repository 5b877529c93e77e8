"""YouTube-VOS: meta.json, sparse scoring with seen/unseen groups, and the submission zip."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from eval.cli import main as eval_main
from eval.errors import EvalError
from eval.ytvos import build_submission, evaluate_ytvos, overall_score, read_meta, seen_categories
from tests.eval_helpers import PERTURBATIONS, load_sequence, read_png, vos_benchmark_per_frame, write_png

CATEGORIES = {"dog-lateobj": {1: "dog", 2: "camel"}, "blackswan-x3": {1: "swan", 2: "dog", 3: "person"}}


def _write_meta(path, frames_by_video: dict[str, dict[int, list[str]]]) -> None:
    videos = {v: {"objects": {str(k): {"category": CATEGORIES[v][k], "frames": fr} for k, fr in objects.items()}}
              for v, objects in frames_by_video.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"videos": videos}))


@pytest.fixture(scope="module")
def split(tmp_path_factory, shared_data):
    """A dense 'train'-like split: every 5th frame of two real-mask videos, one with an object from frame 20 on."""
    root = tmp_path_factory.mktemp("ytvos") / "train"
    videos = {"dog-lateobj": load_sequence(shared_data / "davis-edge-lateobj", "dog-lateobj"),
              "blackswan-x3": load_sequence(shared_data / "davis-mini-multi", "blackswan-x3")}
    frames_by_video = {}
    for name, gts in videos.items():
        kept = {f"{t:05d}": gts[t] for t in range(0, len(gts), 5)}
        for frame, labels in kept.items():
            write_png(root / "Annotations" / name / f"{frame}.png", labels)
        frames_by_video[name] = {k: [f for f, lab in kept.items() if (lab == k).any()] for k in CATEGORIES[name]}
    _write_meta(root / "meta.json", frames_by_video)
    return root, videos


def _write_results(results, videos, perturbation: str, every: int = 5) -> None:
    for name, gts in videos.items():
        for t in range(0, len(gts), every):
            write_png(results / name / f"{t:05d}.png", PERTURBATIONS[perturbation](gts[t], int(gts[t].max())))


def test_meta_json_frames_are_the_union_of_the_objects_frames(split):
    root, _ = split
    videos = {v.name: v for v in read_meta(root / "meta.json")}
    assert videos["dog-lateobj"].categories == {1: "dog", 2: "camel"}
    assert videos["dog-lateobj"].frames == tuple(f"{t:05d}" for t in range(0, 60, 5))


def test_sparse_scores_equal_vos_benchmark_and_split_seen_unseen(split, tmp_path):
    root, videos = split
    _write_results(tmp_path, videos, "erode")
    train_meta = tmp_path / "train_meta.json"
    train_meta.write_text(json.dumps({"videos": {"x": {"objects": {"1": {"category": "dog", "frames": []},
                                                                   "2": {"category": "swan", "frames": []}}}}}))
    report = evaluate_ytvos(root, tmp_path, seen=seen_categories(train_meta), workers=1)
    names = {o.name: o for o in report.objects}
    # Frame 00000 is every object's reference, 00020 the camel's: neither is scored for anyone.
    assert names["dog-lateobj_1"].frames == tuple(f"{t:05d}" for t in (5, 10, 15, 25, 30, 35, 40, 45, 50, 55))
    assert names["dog-lateobj_2"].frames[0] == "00025"
    for name, gts in videos.items():
        kept = list(range(0, len(gts), 5))
        preds = [read_png(tmp_path / name / f"{t:05d}.png") for t in kept]
        reference = vos_benchmark_per_frame([gts[t] for t in kept], preds)
        for obj in (o for o in report.objects if o.sequence == name):
            start, ref_j, ref_f = reference[obj.object_id]
            for frame, j, f in zip(obj.frames, obj.j, obj.f):
                assert (j, f) == (ref_j[kept.index(int(frame)) - start], ref_f[kept.index(int(frame)) - start])
    seen, unseen = report.groups["seen"], report.groups["unseen"]
    assert (seen.num_objects, unseen.num_objects) == (3, 2)  # dog, swan, dog | camel, person
    assert overall_score(report) == (seen.j.mean + seen.f.mean + unseen.j.mean + unseen.f.mean) / 4
    assert report.protocol.value == "sparse"


def test_cli_writes_sparse_csvs_with_groups(split, tmp_path, capsys):
    root, videos = split
    _write_results(tmp_path, videos, "identity")
    assert eval_main(["eval-ytvos", "--split-root", str(root), "--results", str(tmp_path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "protocol sparse" in out and "Overall (YouTube-VOS G): 1.000" in out
    assert (tmp_path / "global_results-ytvos-train-sparse.csv").read_text().splitlines()[1].startswith("1.000,")


def test_reference_only_ground_truth_cannot_be_scored(split, tmp_path):
    root, videos = split
    valid = tmp_path / "valid"
    for name, gts in videos.items():
        write_png(valid / "Annotations" / name / "00000.png", gts[0])
    write_png(valid / "Annotations" / "dog-lateobj" / "00020.png", np.where(videos["dog-lateobj"][20] == 2, 2, 0))
    (valid / "meta.json").write_text((root / "meta.json").read_text())
    _write_results(tmp_path / "results", videos, "identity")
    with pytest.raises(EvalError, match="no ground truth beyond each object's reference frame"):
        evaluate_ytvos(valid, tmp_path / "results", workers=1)


def test_submission_zip_holds_exactly_the_required_frames(split, tmp_path):
    root, videos = split
    results = tmp_path / "results"
    _write_results(results, videos, "erode", every=1)  # every 30 fps frame; only every 5th is required
    grey = read_png(results / "blackswan-x3" / "00010.png")
    Image.fromarray(grey).save(results / "blackswan-x3" / "00010.png")  # an 'L' PNG: re-encoded with the palette
    zip_path = tmp_path / "submission.zip"
    count = build_submission(root, results, zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
        expected = sorted(f"Annotations/{v}/{t:05d}.png" for v, gts in videos.items() for t in range(0, len(gts), 5))
        assert names == expected and count == len(expected)
        stored = Image.open(io.BytesIO(archive.read("Annotations/blackswan-x3/00010.png")))
        assert stored.mode == "P" and np.array_equal(np.array(stored), grey)
        assert archive.read("Annotations/dog-lateobj/00005.png") == (results / "dog-lateobj" / "00005.png").read_bytes()

    (results / "dog-lateobj" / "00035.png").unlink()
    with pytest.raises(EvalError, match="dog-lateobj/00035.png is missing"):
        build_submission(root, results, tmp_path / "broken.zip")
    assert not (tmp_path / "broken.zip").exists() and not list(tmp_path.glob(".broken.zip*"))
