"""The app's HTTP API through FastAPI's test client, on the shipped model and the first 15 frames of DAVIS ``dog``.

Oracles: DAVIS ground truth (propagated masks must beat repeating the given mask), the library's own ``VideoSession``
run directly on the same frames (the app must give the same masks), independent decoders for every file written
(PIL for PNGs, decord for videos, ``zipfile``), and the exact error contract (4xx, ``{"detail": one line}``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seggpt_core.checkpoint import DEFAULT_MODEL
from seggpt_core.predictor import SegGPTPredictor
from vos.masks import read_label_png
from vos.session import VideoSession

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from vos.app.server import AppSettings, create_app  # noqa: E402
from vos.writers import rle_encode  # noqa: E402

SEQ, N = "dog", 15


@pytest.fixture(scope="module")
def predictor() -> SegGPTPredictor:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return SegGPTPredictor.from_pretrained(DEFAULT_MODEL, device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def root(shared_data, tmp_path_factory) -> Path:
    """The app's root: ``dog/`` (15 frames as a folder) and ``dog.mp4`` (the same frames, H.264)."""
    root = tmp_path_factory.mktemp("app-root")
    src = shared_data / "davis-mini" / "JPEGImages" / "480p" / SEQ
    (root / SEQ).mkdir()
    for i in range(N):
        shutil.copy(src / f"{i:05d}.jpg", root / SEQ)
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(root / f"{SEQ}.mp4"), (854, 480), fps=24, codec="libx264",
                                         pix_fmt_out="yuv420p", quality=9, macro_block_size=2,
                                         ffmpeg_log_level="error")
    writer.send(None)
    for i in range(N):
        writer.send(np.ascontiguousarray(np.asarray(Image.open(src / f"{i:05d}.jpg").convert("RGB"))))
    writer.close()
    return root


@pytest.fixture(scope="module")
def ground_truth(shared_data) -> list[np.ndarray]:
    folder = shared_data / "davis-mini" / "Annotations" / "480p" / SEQ
    return [read_label_png(folder / f"{i:05d}.png")[0] for i in range(N)]


@pytest.fixture(scope="module")
def gt_png(shared_data):
    folder = shared_data / "davis-mini" / "Annotations" / "480p" / SEQ
    return lambda i: (folder / f"{i:05d}.png").read_bytes()


@pytest.fixture(scope="module")
def client(predictor, root):
    with TestClient(create_app(predictor, AppSettings(root=root, max_sessions=3))) as client:
        yield client


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def check_error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    return body["detail"]


def open_session(client, path=SEQ) -> dict:
    response = client.post("/api/sessions", json={"path": path})
    assert response.status_code == 201, response.text
    return response.json()


def put_png(client, sid, index, data: bytes):
    return client.put(f"/api/sessions/{sid}/masks/{index}", content=data, headers={"Content-Type": "image/png"})


def run_job(client, sid, **body) -> dict:
    response = client.post(f"/api/sessions/{sid}/propagate", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 300
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = client.get(f"/api/sessions/{sid}/jobs/{job['id']}").json()
    assert job["state"] == "done", job
    return job


def masks(client, sid, indices) -> dict[int, np.ndarray]:
    out = {}
    for i in indices:
        response = client.get(f"/api/sessions/{sid}/masks/{i}.png")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert image.mode == "P"
        out[i] = np.array(image)
    return out


def test_session_info_and_frames(client, root):
    info = open_session(client)
    assert (info["num_frames"], info["width"], info["height"]) == (N, 854, 480)
    response = client.get(f"/api/sessions/{info['id']}/frames/3.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    served = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
    original = np.asarray(Image.open(root / SEQ / "00003.jpg").convert("RGB")).astype(int)
    assert np.abs(served - original).mean() < 3
    check_error(client.get(f"/api/sessions/{info['id']}/frames/{N}.jpg"), 400)
    assert client.get("/api/videos").json() == [{"path": SEQ, "kind": "frames", "frames": N},
                                                {"path": f"{SEQ}.mp4", "kind": "video"}]
    assert client.get("/openapi.json").json()["paths"]["/api/sessions/{session_id}/propagate"]


def test_propagate_forward_tracks_better_than_repeating_and_equals_the_library(client, predictor, root,
                                                                              ground_truth, gt_png):
    sid = open_session(client)["id"]
    info = put_png(client, sid, 0, gt_png(0)).json()
    assert info["keyframes"] == [0] and [o["id"] for o in info["objects"]] == [1]
    job = run_job(client, sid, direction="forward")
    assert (job["done"], job["total"], job["from"]) == (N, N, 0)
    got = masks(client, sid, range(N))
    ours = np.mean([jaccard(got[i], ground_truth[i]) for i in range(1, N)])
    repeat = np.mean([jaccard(ground_truth[0], ground_truth[i]) for i in range(1, N)])
    assert ours > repeat + 0.1, (ours, repeat)
    # the app is a thin layer: the library on the same frames gives the same masks
    session = VideoSession(predictor, root / SEQ)
    session.add_mask(0, ground_truth[0])
    for pred in session.propagate():
        np.testing.assert_array_equal(got[pred.index], pred.labels)


def test_correction_changes_only_the_frames_after_it(client, ground_truth, gt_png):
    sid = open_session(client)["id"]
    put_png(client, sid, 0, gt_png(0))
    run_job(client, sid, direction="forward")
    before = masks(client, sid, range(N))
    k = 8
    info = put_png(client, sid, k, gt_png(k)).json()
    assert info["keyframes"] == [0, k]
    job = run_job(client, sid, direction="forward")  # from the keyframe edited last
    assert job["from"] == k and N - k <= job["total"] < N, job  # frame 0's keyframe is not recomputed
    after = masks(client, sid, range(N))
    for i in range(k):
        np.testing.assert_array_equal(after[i], before[i])
    np.testing.assert_array_equal(after[k], ground_truth[k])
    assert any((after[i] != before[i]).any() for i in range(k + 1, N))
    corrected = np.mean([jaccard(after[i], ground_truth[i]) for i in range(k + 1, N)])
    repeat = np.mean([jaccard(ground_truth[k], ground_truth[i]) for i in range(k + 1, N)])
    assert corrected > repeat, (corrected, repeat)


def test_removing_a_keyframe_recomputes_the_frames_that_depended_on_it(client, predictor, root, ground_truth,
                                                                       gt_png):
    sid = open_session(client)["id"]
    put_png(client, sid, 0, gt_png(0))
    put_png(client, sid, 8, gt_png(8))
    run_job(client, sid, direction="forward")
    before = masks(client, sid, range(N))
    detail = check_error(client.delete(f"/api/sessions/{sid}/masks/5"), 404)
    assert "frame 5 has no keyframe (keyframes: [0, 8])" in detail
    info = client.delete(f"/api/sessions/{sid}/masks/8").json()
    assert info["keyframes"] == [0] and info["computed"] == [i for i in range(N) if i != 8]
    raw = client.get(f"/api/sessions/{sid}/masks/8.raw")
    assert raw.headers["X-Mask"] == "empty" and not masks(client, sid, [8])[8].any()  # the removed mask is gone
    check_error(client.delete(f"/api/sessions/{sid}/masks/8"), 404)
    job = run_job(client, sid, direction="forward")
    assert (job["from"], job["total"]) == (0, N - 8)  # frames 1..7 came from frame 0 before too
    after = masks(client, sid, range(N))
    for i in range(8):
        np.testing.assert_array_equal(after[i], before[i])
    session = VideoSession(predictor, root / SEQ)  # the library with only frame 0's mask gives the same masks
    session.add_mask(0, ground_truth[0])
    for pred in session.propagate("forward"):
        np.testing.assert_array_equal(after[pred.index], pred.labels, err_msg=f"frame {pred.index}")
    client.delete(f"/api/sessions/{sid}/masks/0")
    assert "no mask yet" in check_error(client.post(f"/api/sessions/{sid}/propagate", json={}), 400)


def test_backward_and_both_directions(client, ground_truth, gt_png):
    sid = open_session(client)["id"]
    put_png(client, sid, N - 1, gt_png(N - 1))
    job = run_job(client, sid, direction="backward")
    assert (job["from"], job["total"]) == (N - 1, N)
    got = masks(client, sid, range(N))
    ours = np.mean([jaccard(got[i], ground_truth[i]) for i in range(N - 1)])
    repeat = np.mean([jaccard(ground_truth[N - 1], ground_truth[i]) for i in range(N - 1)])
    assert ours > repeat + 0.1, (ours, repeat)

    sid = open_session(client)["id"]
    put_png(client, sid, 7, gt_png(7))
    job = run_job(client, sid, direction="both")
    assert job["total"] == N
    info = client.get(f"/api/sessions/{sid}").json()
    assert info["computed"] == list(range(N))
    got = masks(client, sid, range(N))
    assert np.mean([jaccard(got[i], ground_truth[i]) for i in range(N) if i != 7]) > 0.5


def test_stop_keeps_the_frames_computed_so_far(client, gt_png):
    sid = open_session(client)["id"]
    put_png(client, sid, 0, gt_png(0))
    job = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"}).json()
    while job["done"] < 2 and job["state"] in ("queued", "running"):
        time.sleep(0.01)
        job = client.get(f"/api/sessions/{sid}/jobs/{job['id']}").json()
    job = client.post(f"/api/sessions/{sid}/jobs/{job['id']}/cancel").json()
    while job["state"] in ("queued", "running"):
        time.sleep(0.02)
        job = client.get(f"/api/sessions/{sid}/jobs/{job['id']}").json()
    assert job["state"] == "cancelled" and 2 <= job["done"] < N, job
    computed = client.get(f"/api/sessions/{sid}").json()["computed"]
    assert computed == list(range(job["done"]))
    assert all(m.any() for m in masks(client, sid, computed).values())


def test_progress_streams_as_server_sent_events(client, gt_png):
    sid = open_session(client)["id"]
    put_png(client, sid, 0, gt_png(0))
    job = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward", "from": 0}).json()
    events = []
    with client.stream("GET", f"/api/sessions/{sid}/jobs/{job['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    done = [e["done"] for e in events]
    assert done == sorted(done) and done[-1] == N and events[-1]["state"] == "done"
    assert len(set(done)) > N // 2  # progress arrives while it runs, not only at the end


def test_objects_add_rename_remove_and_rle_masks(client, ground_truth):
    sid = open_session(client)["id"]
    first = client.post(f"/api/sessions/{sid}/objects", json={"name": "dog"}).json()
    second = client.post(f"/api/sessions/{sid}/objects", json={}).json()
    assert (first["id"], first["name"], second["id"], second["name"]) == (1, "dog", 2, "object 2")
    assert client.patch(f"/api/sessions/{sid}/objects/2", json={"name": "ball"}).json()["name"] == "ball"
    labels = ground_truth[0].copy()
    labels[:40, :60] = 2
    payload = {"objects": [{"id": k, "rle": {"size": [480, 854], "counts": rle_encode(labels == k)}}
                           for k in (1, 2)]}
    response = client.put(f"/api/sessions/{sid}/masks/0", json=payload)
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(masks(client, sid, [0])[0], labels)
    info = client.delete(f"/api/sessions/{sid}/objects/2").json()
    assert [o["name"] for o in info["objects"]] == ["dog"]
    assert set(np.unique(masks(client, sid, [0])[0])) == {0, 1}
    check_error(client.patch(f"/api/sessions/{sid}/objects/7", json={"name": "x"}), 404)
    check_error(client.delete(f"/api/sessions/{sid}/objects/7"), 404)


def test_exports_to_a_folder_and_as_a_download(client, root, gt_png):
    sid = open_session(client)["id"]
    put_png(client, sid, 0, gt_png(0))
    client.patch(f"/api/sessions/{sid}/objects/1", json={"name": "dog"})
    run_job(client, sid, direction="forward")
    served = masks(client, sid, range(N))
    formats = client.get("/api/info").json()["formats"]
    assert {"alpha-png", "cutout-png", "prores-mov", "vp9-webm", "ffv1-mkv", "exr", "palette-png"} <= set(formats)

    def export(fmt, folder=None, **options):
        return client.post(f"/api/sessions/{sid}/exports", json={"format": fmt, "folder": folder,
                                                                 "options": options})

    result = export("palette-png", "out/png").json()
    assert result["folder"] == "out/png"
    for i in range(N):
        np.testing.assert_array_equal(np.array(Image.open(root / "out" / "png" / SEQ / f"{i:05d}.png")), served[i])
    meta = json.loads((root / "out" / "png" / f"{SEQ}.objects.json").read_text())
    assert meta["objects"][0]["name"] == "dog" and meta["frames"] == N

    result = export("alpha-png", "out/alpha", start_number=1001, fps="30000/1001").json()
    folder = root / "out" / "alpha" / SEQ / "object_1"
    assert sorted(p.name for p in folder.glob("*.png")) == [f"{SEQ}_object_1.{1001 + i:04d}.png" for i in range(N)]
    for i in (0, N - 1):
        matte = np.array(Image.open(folder / f"{SEQ}_object_1.{1001 + i:04d}.png"))
        assert matte.dtype == np.uint8 and set(np.unique(matte)) <= {0, 255}
        np.testing.assert_array_equal(matte > 0, served[i] == 1)
    sidecar = json.loads(next(folder.glob("*.json")).read_text())
    assert (sidecar["fps"], sidecar["start_number"], sidecar["objects"][0]["name"]) == ("30000/1001", 1001, "dog")
    detail = check_error(export("alpha-png", "out/alpha"), 400)  # a second export does not silently overwrite
    assert "overwrite" in detail and str(root) not in detail
    assert export("alpha-png", "out/alpha", overwrite=True).status_code == 200

    response = export("overlay-mp4")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert set(archive.namelist()) == {f"{SEQ}.mp4", f"{SEQ}.objects.json"}
        video = root.parent / "export-check.mp4"
        video.write_bytes(archive.read(f"{SEQ}.mp4"))
    import decord

    reader = decord.VideoReader(str(video))
    assert len(reader) == N and reader[0].shape == (480, 854, 3)

    response = export("prores-mov")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        (root.parent / "export-check.mov").write_bytes(archive.read(f"{SEQ}.mov"))
    import imageio_ffmpeg

    frames = imageio_ffmpeg.read_frames(str(root.parent / "export-check.mov"), pix_fmt="rgba", bpp=4)
    meta = next(frames)
    alphas = [np.frombuffer(f, np.uint8).reshape(480, 854, 4)[..., 3] for f in frames]
    assert meta["codec"].startswith("prores") and len(alphas) == N
    assert ((alphas[N - 1] > 127) == (served[N - 1] == 1)).mean() > 0.99

    check_error(export("gif", "x"), 422)
    check_error(export("alpha-png", "out/y", bogus=1), 400)
    check_error(export("alpha-png", "out/y", grow="a"), 400)
    assert "feather" in check_error(export("palette-png", "out/y", feather=2), 400)
    check_error(export("palette-png", "../y"), 400)
    assert not any(p.name.startswith(".") for p in (root / "out").rglob("*")), "temp files left behind"


def test_uploaded_video_is_served_by_index(client, root):
    data = (root / f"{SEQ}.mp4").read_bytes()
    response = client.post("/api/uploads", params={"filename": "clip.mp4"}, content=data)
    assert response.status_code == 201, response.text
    info = response.json()
    assert info["num_frames"] == N and info["fps"] == "24"
    import decord

    reader = decord.VideoReader(str(root / f"{SEQ}.mp4"))
    for i in (9, 2, 3, 14, 0):  # random access: seeks back and forth
        jpeg = client.get(f"/api/sessions/{info['id']}/frames/{i}.jpg").content
        served = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
        assert np.abs(served - reader[i].asnumpy().astype(int)).mean() < 3, i


def test_bad_input_is_a_one_line_4xx(client, predictor, root, tmp_path, gt_png):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copytree(root / SEQ, outside / SEQ)
    link = root / "escape"
    if not link.exists():
        os.symlink(outside, link)
    for path in ("../" + SEQ, "/etc", str(root / SEQ), "escape/" + SEQ, "C:/x"):
        check_error(client.post("/api/sessions", json={"path": path}), 400)
    check_error(client.post("/api/sessions", json={"path": "missing"}), 404)
    check_error(client.post("/api/sessions", json={}), 422)
    check_error(client.get("/api/sessions/nope"), 404)
    check_error(client.get("/api/sessions/nope/frames/0.jpg"), 404)

    sid = open_session(client)["id"]
    check_error(client.post(f"/api/sessions/{sid}/propagate", json={}), 400)  # no mask yet
    small = io.BytesIO()
    Image.fromarray(np.ones((48, 85), np.uint8)).save(small, format="PNG")
    assert "85x48" in check_error(put_png(client, sid, 0, small.getvalue()), 400)
    colour = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 854, 3), np.uint8)).save(colour, format="PNG")
    check_error(put_png(client, sid, 0, colour.getvalue()), 400)
    check_error(put_png(client, sid, 0, b"not a png"), 415)
    check_error(put_png(client, sid, N, gt_png(0)), 400)
    check_error(client.put(f"/api/sessions/{sid}/masks/0", content=b"{", headers={"Content-Type":
                                                                                 "application/json"}), 400)
    check_error(client.post(f"/api/sessions/{sid}/propagate", json={"direction": "sideways"}), 422)
    put_png(client, sid, 0, gt_png(0))
    check_error(client.post(f"/api/sessions/{sid}/propagate", json={"from": 99}), 400)
    check_error(client.get(f"/api/sessions/{sid}/jobs/j999999"), 404)

    job = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"}).json()
    check_error(client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"}), 409)
    check_error(put_png(client, sid, 3, gt_png(3)), 409)
    check_error(client.delete(f"/api/sessions/{sid}/masks/0"), 409)
    client.post(f"/api/sessions/{sid}/jobs/{job['id']}/cancel")

    check_error(client.post("/api/uploads", params={"filename": "clip.txt"}, content=b"x"), 415)
    check_error(client.post("/api/uploads", params={"filename": "clip.mp4"}, content=b"hello world, no video"), 415)
    corrupt = b"\x00\x00\x00\x18ftypmp42" + bytes(5000)
    assert "clip.mp4" in check_error(client.post("/api/uploads", params={"filename": "clip.mp4"},
                                                 content=corrupt), 400)
    with TestClient(create_app(predictor, AppSettings(root=root, max_upload_bytes=1000))) as small_client:
        check_error(small_client.post("/api/uploads", params={"filename": "clip.mp4"},
                                      content=(root / f"{SEQ}.mp4").read_bytes()), 413)


def test_open_sessions_are_bounded_oldest_idle_closed_first(predictor, root):
    with TestClient(create_app(predictor, AppSettings(root=root, max_sessions=2))) as client:
        first, second = open_session(client)["id"], open_session(client)["id"]
        client.get(f"/api/sessions/{first}")  # used last: the second is now the oldest idle one
        third = open_session(client, f"{SEQ}.mp4")["id"]
        assert {s["id"] for s in client.get("/api/sessions").json()} == {first, third}
        check_error(client.get(f"/api/sessions/{second}"), 404)


def test_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text
    for name in ("app.js", "app.css"):
        assert client.get(f"/static/{name}").status_code == 200
    check_error(client.get("/static/../server.py"), 404)


def test_app_command_serves_the_page_and_imports_light(root, tmp_path):
    """``seggpt-vos app`` as a user starts it: prints its URL and serves; registering it imports no torch/FastAPI."""
    import subprocess
    import sys
    import urllib.request

    from vos.cli.app import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    probe = "import sys, vos.cli.app; print(any(m in sys.modules for m in ('torch', 'fastapi', 'uvicorn')))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"

    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "vos.cli", "app", "--root", str(root), "--port", str(port),
                                "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith(f"seggpt-vos app: http://127.0.0.1:{port}/"), line + process.stderr.read()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert b"app.js" in response.read()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)
    bad = subprocess.run([sys.executable, "-m", "vos.cli", "app", "--root", str(tmp_path / "missing")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--root must be an existing folder" in bad.stderr
