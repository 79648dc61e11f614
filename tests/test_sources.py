import shutil

import pytest

from raycurate.sources import (IMAGE, OTHER, VIDEO, SourceError, classify, content_id, list_media,
                               sniff_media_type)

from .conftest import DATA, IMAGES


@pytest.mark.parametrize("head, kind", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", IMAGE),
    (b"\x89PNG\r\n\x1a\n\x00\x00", IMAGE),
    (b"GIF89a\x01\x00", IMAGE),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", IMAGE),
    (b"II*\x00\x08\x00\x00\x00", IMAGE),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", IMAGE),
    (b"\x00\x00\x00\x18ftypisom\x00\x00", VIDEO),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00", VIDEO),
    (b"RIFF\x00\x00\x00\x00AVI LIST", VIDEO),
    (b"\x1a\x45\xdf\xa3\x01\x00", VIDEO),
    (b"hello world", None),
    (b"", None),
])
def test_sniff(head, kind):
    assert sniff_media_type(head) == kind


def test_content_beats_extension():
    jpeg = (IMAGES / "faces" / "pillow_hopper.jpg").read_bytes()[:64]
    assert classify("photo.txt", jpeg) == IMAGE          # wrong extension, real JPEG
    assert classify("clip.jpg", (DATA / "videos" / "counter.mp4").read_bytes()[:64]) == VIDEO
    assert classify("empty.jpg", b"") == IMAGE            # decoding will record the error
    assert classify("notes.txt", b"hello") == OTHER


def test_list_media_recursive_sorted_and_typed(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(IMAGES / "faces" / "pillow_hopper.jpg", tmp_path / "a" / "b" / "x.jpg")
    shutil.copy(IMAGES / "faces" / "pillow_hopper.jpg", tmp_path / "renamed.bin")
    shutil.copy(DATA / "videos" / "counter.mp4", tmp_path / "a" / "clip.mp4")
    (tmp_path / "notes.txt").write_text("not media")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    refs = list_media(str(tmp_path))
    by_name = {r.uri.rsplit("/", 1)[-1]: r for r in refs}
    assert [r.uri for r in refs] == sorted(r.uri for r in refs)
    assert set(by_name) == {"x.jpg", "renamed.bin", "clip.mp4", "notes.txt"}
    assert by_name["renamed.bin"].media_type == IMAGE
    assert by_name["clip.mp4"].media_type == VIDEO
    assert by_name["notes.txt"].media_type == OTHER
    assert by_name["x.jpg"].size == (IMAGES / "faces" / "pillow_hopper.jpg").stat().st_size


def test_same_bytes_same_id():
    a = (IMAGES / "neardup" / "base_images" / "ukbench00120.jpg").read_bytes()
    b = (IMAGES / "neardup" / "mixed_images" / "ukbench00120.jpg").read_bytes()
    c = (IMAGES / "neardup" / "mixed_images" / "ukbench00120_resize.jpg").read_bytes()
    assert content_id(a) == content_id(b) != content_id(c)
    assert len(content_id(a)) == 64


def test_missing_input_raises(tmp_path):
    with pytest.raises(SourceError, match="input not found"):
        list_media(str(tmp_path / "nope"))
