"""The listing rules (raycurate/listing.py) on real files from tests/data, copied and linked in tmp_path:
loops, links out of INPUT, dangling links, link loops, FIFOs, sockets, devices, excluded OUT and DB,
one file under two names."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid

import pytest

from raycurate.listing import Listing, list_input
from raycurate.sources import IMAGE, VIDEO, SourceError, content_id, list_media

from .conftest import DATA, IMAGES

FACES = sorted(p for p in (IMAGES / "faces").iterdir() if p.is_file() and not p.name.startswith("."))[:4]
CLIP = DATA / "videos" / "counter.mp4"


def _pile(tmp_path):
    """in/ with four photos in in/d and a video at the top; outside/ next to it with one photo."""
    top = tmp_path / "in"
    (top / "d").mkdir(parents=True)
    for p in FACES:
        shutil.copy(p, top / "d" / p.name)
    shutil.copy(CLIP, top / "clip.mp4")
    (tmp_path / "outside").mkdir()
    shutil.copy(FACES[0], tmp_path / "outside" / "far.jpg")
    return top


def _names(listing: Listing, top) -> list[str]:
    return [os.path.relpath(f.uri, top) for f in listing.files]


def _reasons(listing: Listing, top) -> dict[str, str]:
    return {os.path.relpath(s.uri, top): s.reason for s in listing.skipped}


def test_a_directory_loop_lists_each_file_once_and_says_so_once(tmp_path):
    top = _pile(tmp_path)
    (top / "d" / "up").symlink_to("..")          # d/up -> in: the loop that listed every file 41 times
    (top / "again").symlink_to("d")              # a second name for d
    listing = list_input(str(top))
    assert _names(listing, top) == ["clip.mp4"] + [f"d/{p.name}" for p in FACES]
    reasons = _reasons(listing, top)
    assert set(reasons) == {"d/up", "again"}     # one line per link, none per file
    assert "directory loop" in reasons["d/up"] and f"leads back to {top} (already listed)" in reasons["d/up"]
    assert reasons["again"] == f"same folder as {top / 'd'} (already listed)"
    assert [f.media_type for f in listing.files] == [VIDEO] + [IMAGE] * len(FACES)


def test_a_link_out_of_input_is_skipped_unless_follow_links(tmp_path):
    top = _pile(tmp_path)
    (top / "ext").symlink_to(tmp_path / "outside")
    (top / "far.jpg").symlink_to(tmp_path / "outside" / "far.jpg")
    (tmp_path / "outside" / "back").symlink_to(top)   # from outside, back into INPUT
    listing = list_input(str(top))
    assert not any("outside" in f.uri or "ext" in f.uri or "far" in f.uri for f in listing.files)
    reasons = _reasons(listing, top)
    assert reasons["ext"] == (f"symlink leads outside INPUT to {tmp_path / 'outside'} "
                              "(not followed: input.follow_links is false)")
    assert f"outside INPUT to {tmp_path / 'outside' / 'far.jpg'}" in reasons["far.jpg"]

    followed = list_input(str(top), follow_links=True)
    assert _names(followed, top) == sorted(["clip.mp4", "ext/far.jpg", "far.jpg"] + [f"d/{p.name}" for p in FACES])
    assert _reasons(followed, top) == {"ext/back": f"same folder as {top} (already listed)"}
    assert followed.files[_names(followed, top).index("ext/far.jpg")].size == FACES[0].stat().st_size


def test_dangling_links_and_link_loops_are_skipped_with_their_reason(tmp_path):
    top = _pile(tmp_path)
    (top / "gone.jpg").symlink_to(top / "removed.jpg")
    (top / "a.jpg").symlink_to("b.jpg")
    (top / "b.jpg").symlink_to("a.jpg")
    listing = list_input(str(top))
    assert _names(listing, top) == ["clip.mp4"] + [f"d/{p.name}" for p in FACES]
    assert _reasons(listing, top) == {
        "gone.jpg": f"dangling symlink: its target {top / 'removed.jpg'} does not exist",
        "a.jpg": "symlink loop (too many levels of symbolic links): not read",
        "b.jpg": "symlink loop (too many levels of symbolic links): not read",
    }


def test_fifo_socket_and_devices_are_never_opened(tmp_path, monkeypatch):
    top = _pile(tmp_path)
    os.mkfifo(top / "pipe.mp4")
    (top / "to_pipe.jpg").symlink_to("pipe.mp4")
    monkeypatch.chdir(top)                  # an AF_UNIX path must stay short: bind a relative name
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("s.jpg")
    (top / "null.jpg").symlink_to("/dev/null")
    try:
        listing = list_input(str(top))
        followed = list_input(str(top), follow_links=True)
    finally:
        sock.close()
    assert _names(listing, top) == _names(followed, top) == ["clip.mp4"] + [f"d/{p.name}" for p in FACES]
    reasons = _reasons(listing, top)
    assert reasons["pipe.mp4"] == "a FIFO (named pipe): not read"
    assert reasons["to_pipe.jpg"] == f"symlink to a FIFO (named pipe) ({top / 'pipe.mp4'}): not read"
    assert reasons["s.jpg"] == "a socket: not read"
    assert "outside INPUT to /dev/null" in reasons["null.jpg"]
    assert _reasons(followed, top)["null.jpg"] == "symlink to a character device (/dev/null): not read"


def test_listing_never_blocks_on_a_fifo(tmp_path):
    """In a child with a timeout: a blocked open() of a FIFO would hang the child, not the test session."""
    top = _pile(tmp_path)
    os.mkfifo(top / "pipe.jpg")
    (top / "link.jpg").symlink_to("pipe.jpg")
    code = textwrap.dedent(f"""
        from raycurate.listing import _sniff_local, list_input
        listing = list_input({str(top)!r}, follow_links=True)
        assert {{s.uri.rsplit("/", 1)[1] for s in listing.skipped}} == {{"pipe.jpg", "link.jpg"}}, listing
        assert _sniff_local({str(top / "pipe.jpg")!r}) == b""   # a name swapped for a FIFO after listing
        print(len(listing.files))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(1 + len(FACES))


def test_out_and_db_inside_input_are_excluded_and_reported(tmp_path):
    top = _pile(tmp_path)
    (top / "out" / "images").mkdir(parents=True)
    shutil.copy(FACES[1], top / "out" / "images" / "kept.jpg")
    (top / "out" / "metadata.jsonl").write_text("{}\n")
    (top / "db" / "images.lance").mkdir(parents=True)
    (top / "db" / "images.lance" / "data.lance").write_bytes(b"lance")
    (top / "d" / "exported").symlink_to("../out/images")      # a link into OUT
    (top / "one.jpg").symlink_to("out/images/kept.jpg")       # a file link into OUT
    listing = list_input(str(top), exclude=[str(top / "out") + "/", str(top / "d" / ".." / "db")])
    assert _names(listing, top) == ["clip.mp4"] + [f"d/{p.name}" for p in FACES]
    assert listing.excluded == [str(top / p) for p in ("d/exported", "db", "one.jpg", "out")]
    assert listing.skipped == []
    # without the exclusion the same pile lists OUT and the DB as input
    assert {"out/images/kept.jpg", "db/images.lance/data.lance"} <= set(_names(list_input(str(top)), top))
    # INPUT inside OUT: nothing is read, and the listing says why
    inner = list_input(str(top / "out" / "images"), exclude=[str(top / "out")])
    assert inner.files == [] and inner.excluded == [str(top / "out" / "images")]


def test_one_file_under_two_names_is_listed_under_both(tmp_path):
    top = _pile(tmp_path)
    (top / "sub1").mkdir()
    (top / "sub2").mkdir()
    shutil.copy(CLIP, top / "sub1" / "clip.mp4")
    os.link(top / "sub1" / "clip.mp4", top / "sub2" / "clip.mp4")   # a hard link
    (top / "alias.jpg").symlink_to(f"d/{FACES[0].name}")            # a file link inside INPUT
    listing = list_input(str(top))
    names = _names(listing, top)
    assert names == sorted(["alias.jpg", "clip.mp4", "sub1/clip.mp4", "sub2/clip.mp4"]
                           + [f"d/{p.name}" for p in FACES])
    by = dict(zip(names, listing.files))
    assert by["alias.jpg"].media_type == IMAGE and by["sub2/clip.mp4"].media_type == VIDEO
    assert (by["alias.jpg"].size, by["alias.jpg"].mtime_ns) == (by[f"d/{FACES[0].name}"].size,
                                                                 by[f"d/{FACES[0].name}"].mtime_ns)
    assert content_id((top / "alias.jpg").read_bytes()) == content_id(FACES[0].read_bytes())
    assert listing.skipped == []


def test_mtime_max_files_hidden_and_list_media(tmp_path):
    top = _pile(tmp_path)
    (top / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (top / ".hidden.jpg").symlink_to("d/" + FACES[0].name)
    listing = list_input(str(top))
    assert all(f.mtime_ns == os.stat(f.uri).st_mtime_ns for f in listing.files)
    assert listing.skipped == [] and len(listing.files) == 1 + len(FACES)   # hidden: no file, no note
    assert list_input(str(top), max_files=2).files == listing.files[:2]
    assert list_media(str(top), max_files=3) == listing.files[:3]
    single = list_input(str(top / "clip.mp4"))
    assert [(f.uri, f.media_type) for f in single.files] == [(str(top / "clip.mp4"), VIDEO)]
    with pytest.raises(SourceError, match="input not found"):
        list_input(str(top / "nope"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file and folder whatever its mode")
def test_unreadable_file_stays_listed_unreadable_folder_is_skipped(tmp_path):
    top = _pile(tmp_path)
    (top / "d" / FACES[0].name).chmod(0)
    (top / "locked").mkdir()
    shutil.copy(FACES[1], top / "locked" / "x.jpg")
    (top / "locked").chmod(0)
    try:
        listing = list_input(str(top))
    finally:
        (top / "locked").chmod(0o755)
    assert f"d/{FACES[0].name}" in _names(listing, top)
    assert "folder not listed" in _reasons(listing, top)["locked"]


def test_bucket_listing_excludes_by_key_prefix():
    fsspec = pytest.importorskip("fsspec")
    mem = fsspec.filesystem("memory")
    prefix = f"/bucket-{uuid.uuid4().hex[:8]}"
    try:
        mem.pipe(f"{prefix}/in/a.jpg", FACES[0].read_bytes())
        mem.pipe(f"{prefix}/in/clip.mp4", CLIP.read_bytes())
        mem.pipe(f"{prefix}/in/.hidden", b"x")
        mem.pipe(f"{prefix}/in/out/images/a.jpg", FACES[0].read_bytes())
        mem.pipe(f"{prefix}/in/outer.jpg", FACES[1].read_bytes())   # shares a prefix with out, not excluded
        listing = list_input(f"memory://{prefix}/in", exclude=[f"memory://{prefix}/in/out/", "/local/out"])
        assert [f.uri.rsplit("/in/", 1)[1] for f in listing.files] == ["a.jpg", "clip.mp4", "outer.jpg"]
        assert [f.media_type for f in listing.files] == [IMAGE, VIDEO, IMAGE]
        assert listing.excluded == [f"memory://{prefix}/in/out/"] and listing.skipped == []
    finally:
        mem.rm(prefix, recursive=True)


def test_store_listing_fills_mtime(tmp_path):
    """The store path (pyarrow.fs FileInfo, as for s3:// and gs://) fills mtime_ns, here on file://."""
    top = _pile(tmp_path)
    listing = list_input(f"file://{top}", exclude=[f"file://{top / 'd'}"])
    assert [(f.path, f.mtime_ns) for f in listing.files] == [(str(top / "clip.mp4"),
                                                               os.stat(top / "clip.mp4").st_mtime_ns)]
    assert listing.excluded == [f"file://{top / 'd'}"]

