"""Content-addressed ingest (raycurate.ingest), each rule of its docstring on real files of tests/data, without
Ray: which files are read before the pipeline, which one of each content is analysed, what is skipped."""
import hashlib
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from raycurate.ingest import ANY_SIZE, Catalogue, names_of, plan_ingest, record_names
from raycurate.listing import list_input
from raycurate.store.schema import TABLE_NAME
from raycurate.store.table import open_or_create_table

from .conftest import DATA, IMAGES

PHOTOS = [IMAGES / "faces" / "matplotlib_grace_hopper.jpg", IMAGES / "faces" / "skimage_astronaut.png",
          IMAGES / "face_recognition" / "obama.jpg", IMAGES / "negatives" / "grass.jpg"]


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def pile(tmp_path):
    """Four photos, two byte copies of the first under other names (one in a sub-folder), a clip and its copy."""
    root = tmp_path / "pile"
    (root / "sub").mkdir(parents=True)
    for p in PHOTOS:
        shutil.copy(p, root / p.name)
    shutil.copy(PHOTOS[0], root / "sub" / "hopper_again.jpg")
    shutil.copy(PHOTOS[0], root / "zz_hopper.jpg")
    shutil.copy(DATA / "videos" / "counter.mp4", root / "clip.mp4")
    shutil.copy(DATA / "videos" / "counter.mp4", root / "sub" / "clip.mp4")
    return root


def _media(root):
    return [f for f in list_input(str(root)).files if f.media_type in ("image", "video")]


def test_every_file_names_one_content_and_each_new_content_is_read_once(pile):
    media = _media(pile)
    work = plan_ingest(media, Catalogue())
    assert sorted(f.uri for f in work.names) == sorted(f.uri for f in media)       # every name, none lost
    contents = {}
    for f in work.names:
        contents.setdefault(f.content_id or f.uri, []).append(f.uri)
    items = work.images + work.videos
    assert len(items) == len(contents) == 5 and work.duplicate_files == 3           # 4 photos and a clip
    assert len({f.content_id or f.uri for f in items}) == len(items)               # one item per content
    hopper = _sha(PHOTOS[0])
    item = next(f for f in items if f.content_id == hopper)
    assert item.uri == min(contents[hopper]) and len(contents[hopper]) == 3        # the first name is read
    assert [f.uri for f in work.videos] == [str(pile / "clip.mp4")]


def test_only_files_whose_size_another_shares_are_hashed_before_the_pipeline(pile):
    work = plan_ingest(_media(pile), Catalogue())
    hashed = {f.uri for f in work.names if f.content_id is not None}
    # the three Hoppers and the two clips share their sizes: hashed; the other photos are hashed where read
    assert work.hashed == len(hashed) == 5
    for f in work.names:
        assert (f.content_id is not None) == (f.uri in hashed)
        if f.content_id is not None:
            assert f.content_id == _sha(Path(f.uri))


def test_a_new_name_of_stored_bytes_is_hashed_and_skipped_and_an_unchanged_file_is_not_read(pile, tmp_path):
    db = str(tmp_path / "db")
    first = plan_ingest(_media(pile), Catalogue())
    stored = [{"id": f.content_id or _sha(Path(f.uri)), "uri": f.uri, "run_id": "r1",
               "media_type": "image", "file_size": f.size} for f in first.images]
    schema = pa.schema([pa.field("id", pa.string(), False), pa.field("uri", pa.string(), False),
                        pa.field("run_id", pa.string(), False), pa.field("media_type", pa.string(), False),
                        pa.field("file_size", pa.int64()), pa.field("error", pa.string())])
    open_or_create_table(db, TABLE_NAME, schema).add(pa.Table.from_pylist(stored, schema=schema))
    assert record_names(first, Catalogue(), db, "r1") == 8   # every name: ids hashed, or of the rows stored
    shutil.copy(PHOTOS[2], pile / "obama_renamed.jpg")       # stored bytes, a name never seen
    catalogue = Catalogue.read(db)
    second = plan_ingest(_media(pile), catalogue)
    assert second.known == 8                                  # unchanged: name, size and mtime recorded
    assert second.hashed == 1                                 # the new name: its size is listed and stored
    assert second.images == [] and second.stored["image"] == 4 and second.duplicate_files == 4
    assert names_of(db)[_sha(PHOTOS[0])] == sorted([str(pile / PHOTOS[0].name), str(pile / "sub" / "hopper_again.jpg"),
                                                    str(pile / "zz_hopper.jpg")])


def test_a_photo_stored_before_an_analyser_was_enabled_is_analysed_again(pile, tmp_path):
    db = str(tmp_path / "db")
    schema = pa.schema([pa.field("id", pa.string(), False), pa.field("uri", pa.string(), False),
                        pa.field("run_id", pa.string(), False), pa.field("media_type", pa.string(), False),
                        pa.field("file_size", pa.int64()), pa.field("error", pa.string()),
                        pa.field("face_model", pa.string())])
    rows = [{"id": _sha(p), "uri": str(pile / p.name), "run_id": "r1", "media_type": "image",
             "file_size": p.stat().st_size, "face_model": "centerface" if k else None} for k, p in enumerate(PHOTOS)]
    open_or_create_table(db, TABLE_NAME, schema).add(pa.Table.from_pylist(rows, schema=schema))
    work = plan_ingest([f for f in _media(pile) if f.media_type == "image"], Catalogue.read(db, ["face"]))
    assert [f.uri for f in work.images] == [str(pile / PHOTOS[0].name)] and work.reanalysed == 1
    assert plan_ingest(_media(pile), Catalogue.read(db, [])).images == []   # without face: all stored


def test_a_video_stored_without_its_size_makes_every_new_video_hashed(tmp_path):
    catalogue = Catalogue()
    catalogue.sizes["video"].add(ANY_SIZE)
    root = tmp_path / "v"
    root.mkdir()
    shutil.copy(DATA / "videos" / "counter.mp4", root / "a.mp4")
    work = plan_ingest(_media(root), catalogue)
    assert work.hashed == 1 and work.videos[0].content_id == _sha(root / "a.mp4")
