"""DAVIS and YouTube-VOS listing on real DAVIS data (and a YouTube-VOS layout built from it), and sharding."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from seggpt_core.errors import InputError
from vos.datasets import VideoTask, list_davis, list_youtube_vos, parse_shard, shard
from vos.masks import read_label_png


def test_davis_first_frame_prompts(shared_data):
    tasks = list_davis(shared_data / "davis-mini")
    assert [t.name for t in tasks] == ["blackswan", "car-shadow", "dog", "libby", "parkour"]
    dog = tasks[2]
    assert dog.frames_dir == shared_data / "davis-mini" / "JPEGImages" / "480p" / "dog"
    assert dog.frame_names == tuple(f"{i:05d}" for i in range(60))
    assert dog.masks == {"00000": shared_data / "davis-mini" / "Annotations" / "480p" / "dog" / "00000.png"}
    assert dog.new_objects == {"00000": (1,)} and dog.output_frames is None and dog.first_frame == "00000"
    multi = list_davis(shared_data / "davis-mini-multi")
    assert [t.new_objects for t in multi] == [{"00000": (1, 2, 3)}, {"00000": (1, 2)}]


def test_davis_protocol_ignores_late_objects_unless_asked(shared_data):
    late = shared_data / "davis-edge-lateobj"
    (task,) = list_davis(late)
    assert task.new_objects == {"00000": (1,)}
    (task,) = list_davis(late, late_objects=True)
    first_seen = next(i for i in range(60)
                      if 2 in read_label_png(late / "Annotations" / "480p" / "dog-lateobj" / f"{i:05d}.png")[0])
    assert task.new_objects == {"00000": (1,), f"{first_seen:05d}": (2,)}
    assert set(task.masks) == set(task.new_objects)


def test_davis_void_is_not_an_object(shared_data):
    (task,) = list_davis(shared_data / "davis-edge-void", late_objects=True)
    assert task.new_objects == {"00000": (1,)}


def test_davis_errors(shared_data, tmp_path):
    with pytest.raises(InputError, match=r"ImageSets/2017/test-dev.txt: DAVIS split file not found"):
        list_davis(shared_data / "davis-mini", split="test-dev")
    root = tmp_path / "davis"
    shutil.copytree(shared_data / "davis-mini" / "ImageSets", root / "ImageSets")
    with pytest.raises(InputError, match="blackswan: frame folder does not exist"):
        list_davis(root)


def test_youtube_vos_listing(youtube_vos, tmp_path):
    split = youtube_vos(tmp_path)
    (task,) = list_youtube_vos(split)
    assert isinstance(task, VideoTask) and task.name == "vid1"
    assert task.frames_dir == split / "JPEGImages" / "vid1"
    assert task.frame_names == tuple(f"{i:05d}" for i in range(0, 30, 5))
    assert task.masks == {n: split / "Annotations" / "vid1" / f"{n}.png" for n in ("00000", "00020")}
    assert task.new_objects == {"00000": (1,), "00020": (2,)}
    assert task.output_frames == frozenset(task.frame_names)


def test_youtube_vos_all_frames_writes_only_meta_frames(youtube_vos, tmp_path):
    split = youtube_vos(tmp_path)
    (task,) = list_youtube_vos(split, frames_root=tmp_path / "all_frames" / "JPEGImages")
    assert len(task.frame_names) == 30
    assert task.output_frames == frozenset(f"{i:05d}" for i in range(0, 30, 5))


def test_youtube_vos_without_meta_writes_split_frames(youtube_vos, tmp_path):
    split = youtube_vos(tmp_path, with_meta=False)
    (task,) = list_youtube_vos(split, frames_root=tmp_path / "all_frames" / "JPEGImages")
    assert task.output_frames == frozenset(f"{i:05d}" for i in range(0, 30, 5))


def test_youtube_vos_later_png_repeating_an_object_only_adds_the_new_one(youtube_vos, tmp_path):
    split = youtube_vos(tmp_path)
    png = split / "Annotations" / "vid1" / "00020.png"
    labels, palette = read_label_png(png)
    labels[:40, :40] = 1  # the annotator also drew object 1 here
    image = Image.fromarray(labels)
    image.putpalette(palette.ravel().tolist())
    image.save(png)
    (task,) = list_youtube_vos(split)
    assert task.new_objects == {"00000": (1,), "00020": (2,)}


def test_youtube_vos_errors(youtube_vos, tmp_path):
    with pytest.raises(InputError, match="Annotations folder not found"):
        list_youtube_vos(tmp_path)
    split = youtube_vos(tmp_path)
    shutil.copy(split / "Annotations" / "vid1" / "00020.png", split / "Annotations" / "vid1" / "00099.png")
    with pytest.raises(InputError, match=r"00099.png: annotation for frame '00099' but video vid1 has no such frame"):
        list_youtube_vos(split)
    (split / "Annotations" / "vid1" / "00099.png").unlink()
    (split / "meta.json").write_text(json.dumps({"videos": {}}))
    with pytest.raises(InputError, match="meta.json: no entry for video vid1"):
        list_youtube_vos(split)
    (split / "meta.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="meta.json: not a YouTube-VOS meta.json"):
        list_youtube_vos(split)


def test_empty_first_annotation(youtube_vos, tmp_path):
    split = youtube_vos(tmp_path)
    for png in (split / "Annotations" / "vid1").iterdir():
        Image.fromarray(np.zeros((480, 854), np.uint8)).save(png)
    with pytest.raises(InputError, match="00000.png: the first annotation has no object"):
        list_youtube_vos(split)


def test_shards_partition_deterministically(shared_data):
    tasks = list_davis(shared_data / "davis-mini")
    parts = [shard(tasks, i, 3) for i in range(3)]
    assert sorted(t.name for p in parts for t in p) == sorted(t.name for t in tasks)
    assert [[t.name for t in p] for p in parts] == [[t.name for t in p] for p in (shard(tasks, i, 3) for i in range(3))]
    assert [len(p) for p in parts] == [2, 2, 1]
    with pytest.raises(InputError, match="need 0 <= i < n"):
        shard(tasks, 3, 3)


def test_worker_reads_torchrun_environment_once(monkeypatch):
    from vos.runner import Worker

    for name, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(name, value)
    assert Worker.from_env() == Worker(1, 2, 1)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name)
    assert Worker.from_env() == Worker(0, 1, 0)  # one process: the whole list


def test_parse_shard():
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "a/b", "1", "-1/2"):
        with pytest.raises(InputError, match="shard"):
            parse_shard(bad)
