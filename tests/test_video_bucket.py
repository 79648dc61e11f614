"""Bucket videos: probed through ranged reads, planned into segments like local ones, spooled to a local
file in chunks (memory that does not grow with the file), the spool removed after use.

The bucket is fsspec's ``memory://`` filesystem, reached through the same storage layer (``pyarrow.fs``) as
``s3://`` and ``gs://``; tests/test_buckets.py runs the whole pipeline against a real S3 API.
"""
from __future__ import annotations

import os
import tempfile
import tracemalloc
import uuid

import pytest

from raycurate.sources import FileRef, SourceError, list_media, open_filesystem
from raycurate.video import segments
from raycurate.video.segments import local_copy, plan_segments
from raycurate.sources import file_content_id

from .conftest import DATA

fsspec = pytest.importorskip("fsspec")
VIDEO = DATA / "videos" / "testvideo.mp4"   # 24 s at 29.97 fps, 720 frames


@pytest.fixture()
def bucket():
    """A fresh prefix in the in-memory bucket; its files are removed afterwards."""
    mem = fsspec.filesystem("memory")
    prefix = f"/bucket-{uuid.uuid4().hex[:8]}"
    yield mem, prefix
    mem.rm(prefix, recursive=True)


@pytest.fixture()
def spool_dir(tmp_path, monkeypatch):
    """The temporary folder ($TMPDIR) the spool files go to, empty before the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _video_settings(segment_s):
    from raycurate.config import load_config, typed

    return typed(load_config(overrides=[("video.segment_s", segment_s), ("video.sample_rate", 10)])).video


class _Counting:
    """A seekable file object that counts the bytes read through it."""

    def __init__(self, f):
        self.f, self.read_bytes = f, 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.read_bytes += len(data)
        return data

    def seek(self, offset, whence=0):
        return self.f.seek(offset, whence)

    def tell(self):
        return self.f.tell()


def test_a_bucket_video_is_planned_into_the_same_segments_as_its_local_copy(bucket, spool_dir, monkeypatch):
    mem, prefix = bucket
    mem.pipe(f"{prefix}/clips/testvideo.mp4", VIDEO.read_bytes())
    [remote] = list_media(f"memory://{prefix}/clips")
    assert remote.media_type == "video" and remote.size == VIDEO.stat().st_size
    local = FileRef(str(VIDEO), str(VIDEO), VIDEO.stat().st_size, "video")

    opened = []
    real_open = segments.open_input

    def counting_open(uri):
        class Ctx:
            def __enter__(self):
                self.cm = real_open(uri)
                opened.append(_Counting(self.cm.__enter__()))
                return opened[-1]

            def __exit__(self, *exc):
                return self.cm.__exit__(*exc)
        return Ctx()

    monkeypatch.setattr(segments, "open_input", counting_open)
    video = _video_settings(8)
    local_plan, remote_plan = plan_segments([local], video), plan_segments([remote], video)
    spans = [(p["segment"], p["start"], p["stop"]) for p in local_plan]
    assert spans == [(0, 0, 240), (1, 240, 480), (2, 480, None)]
    assert [(p["segment"], p["start"], p["stop"]) for p in remote_plan] == spans
    assert {p["uri"] for p in remote_plan} == {remote.uri}
    # probing read the container's header, not the video
    assert len(opened) == 1 and 0 < opened[0].read_bytes < remote.size // 4
    # the driver did not hash the bucket video: each segment's task hashes its spooled copy (as a whole,
    # unsplit video's task does), which gives the local copy's id
    assert {p["video_id"] for p in remote_plan} == {None}
    [local_id] = {p["video_id"] for p in local_plan}
    for item in remote_plan:
        with local_copy(item["uri"]) as path:
            assert file_content_id(path) == local_id
    assert not os.listdir(spool_dir)


def test_a_short_or_unsplit_bucket_video_is_one_item(bucket):
    mem, prefix = bucket
    mem.pipe(f"{prefix}/counter.mp4", (DATA / "videos" / "counter.mp4").read_bytes())   # 3 s
    mem.pipe(f"{prefix}/testvideo.mp4", VIDEO.read_bytes())
    mem.pipe(f"{prefix}/broken.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100)
    refs = list_media(f"memory://{prefix}")
    plan = plan_segments(refs, _video_settings(8))
    assert [(p["uri"].rsplit("/", 1)[-1], p["segment"], p["stop"]) for p in plan] == [
        ("broken.mp4", 0, None), ("counter.mp4", 0, None),
        ("testvideo.mp4", 0, 240), ("testvideo.mp4", 1, 480), ("testvideo.mp4", 2, None)]
    assert [p["segment"] for p in plan_segments(refs, _video_settings(None))] == [0, 0, 0]


def test_spooling_a_large_object_holds_a_few_chunks_not_the_file(bucket, spool_dir):
    mem, prefix = bucket
    size, chunk = 64 << 20, 1 << 20
    data = os.urandom(size)
    mem.pipe(f"{prefix}/big.mp4", data)
    tracemalloc.start()
    try:
        with local_copy(f"memory://{prefix}/big.mp4", chunk=chunk) as path:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert os.path.dirname(path) == str(spool_dir)
            assert os.path.getsize(path) == size
            with open(path, "rb") as f:
                assert f.read() == data
    finally:
        tracemalloc.stop()
    assert peak < 4 * chunk, f"peak {peak / 2**20:.1f} MiB while spooling {size >> 20} MiB"
    assert not os.listdir(spool_dir)


def test_the_spool_is_removed_after_an_error(bucket, spool_dir):
    mem, prefix = bucket
    mem.pipe(f"{prefix}/v.mp4", VIDEO.read_bytes())
    with pytest.raises(RuntimeError, match="decoder failed"):
        with local_copy(f"memory://{prefix}/v.mp4") as path:
            assert os.path.exists(path) and path.endswith(".mp4")
            raise RuntimeError("decoder failed")
    assert not os.path.exists(path) and not os.listdir(spool_dir)
    with pytest.raises(OSError):   # the object is not there: the half-made spool goes too
        with local_copy(f"memory://{prefix}/missing.mp4"):
            pass
    assert not os.listdir(spool_dir)


def test_a_local_path_is_used_in_place(spool_dir):
    with local_copy(str(VIDEO)) as path:
        assert path == str(VIDEO)
    assert not os.listdir(spool_dir)


def test_a_scheme_nobody_knows_is_still_one_clear_error():
    with pytest.raises(SourceError, match="cannot open nosuchscheme://b/x.mp4"):
        open_filesystem("nosuchscheme://b/x.mp4")
