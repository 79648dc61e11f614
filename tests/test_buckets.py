"""Buckets: an s3:// input, the LanceDB and the export in a bucket, through a real S3 API.

moto's S3 server runs on 127.0.0.1 with authentication on (an IAM user's key; a wrong secret is
refused with SignatureDoesNotMatch, as AWS, MinIO or R2 would). The credentials reach the run by
the config (``--set storage.s3.*``, in-process, on the session's Ray whose workers never saw them)
and by the environment (``AWS_*`` in a subprocess running the ``raycurate`` command).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raycurate import storage
from raycurate.cli import main
from raycurate.config import ConfigError, load_config, parse_set

from .conftest import AWS_VARS, DATA, IN, OUT, PHOTOS, REGION, SMALL, VIDEO

pytest.importorskip("boto3")
pytest.importorskip("moto.server")

# Cheap analysers: image quality and the content vector (no model); every image kept.
FAST = ["--profile", "fast-cpu", "--set", "analyzers.nsfw.enabled=false", "--set", "analyzers.face.enabled=false",
        "--set", "filter.min_faces=null", "--set", "filter.min_side=null",
        "--set", "filter.drop_blurry=false", "--set", "video.max_frames=2", "--set", "video.segment_s=null",
        # counter.mp4 shows digits, no face: Stage 1 would drop every frame, and Stage 3's face parts are 0
        "--set", "cascade.stage1.keep_faceless=true", "--set", "cascade.stage3.threshold=0.2"]


def _by_config(s3, secret: str | None = None) -> list[str]:
    return ["--set", f"storage.s3.endpoint_url={s3.endpoint}", "--set", f"storage.s3.access_key_id={s3.key_id}",
            "--set", f"storage.s3.secret_access_key={secret or s3.secret}", "--set", f"storage.s3.region={REGION}"]


def _keys(s3, prefix: str) -> list[str]:
    pages = s3.client.get_paginator("list_objects_v2").paginate(Bucket=OUT, Prefix=prefix)
    return sorted(o["Key"][len(prefix):] for page in pages for o in page.get("Contents", []))


def _text(s3, key: str) -> str:
    return s3.client.get_object(Bucket=OUT, Key=key)["Body"].read().decode("utf-8")


def _rows(s3, db: str) -> list[dict]:
    """The images table, read with lancedb itself (not raycurate's code)."""
    import lancedb

    opts = {"aws_endpoint": s3.endpoint, "aws_region": REGION, "allow_http": "true",
            "aws_access_key_id": s3.key_id, "aws_secret_access_key": s3.secret}
    table = lancedb.connect(db, storage_options=opts).open_table("images")
    return table.search().select(["uri", "id", "error", "media_type", "source_video_uri", "quality_error",
                                  "content_error"]).limit(None).to_list()


@pytest.fixture(scope="module")
def by_env(s3, tmp_path_factory):
    """The `raycurate` command in a subprocess with AWS_* only (its own local Ray): its driver resolves them
    and hands them to its workers. Started here, waited for in its test: it runs while `by_config` does."""
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARS}
    env.update(AWS_ENDPOINT_URL=s3.endpoint, AWS_ACCESS_KEY_ID=s3.key_id, AWS_SECRET_ACCESS_KEY=s3.secret,
               AWS_REGION=REGION)
    exe = Path(sys.executable).with_name("raycurate")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "raycurate.cli"]
    proc = subprocess.Popen([*cmd, "run", f"s3://{IN}/small", "--out", f"s3://{OUT}/by-env", *FAST,
                             "--set", "ray.num_cpus=2"], env=env, cwd=tmp_path_factory.mktemp("by-env"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def by_config(s3, by_env, ray_session):
    """A run in this process, credentials and endpoint by `--set` only (no AWS_* anywhere): the session's
    Ray workers never saw them."""
    rc = main(["run", f"s3://{IN}/photos", "--out", f"s3://{OUT}/by-config", *FAST, *_by_config(s3)])
    return rc


def test_run_by_config_stores_and_exports_in_the_bucket(s3, by_config):
    assert by_config == 0
    rows = _rows(s3, f"s3://{OUT}/by-config/db")
    photos = [r for r in rows if r["media_type"] == "image"]
    frames = [r for r in rows if r["media_type"] == "video_frame"]
    assert sorted(r["uri"] for r in photos) == sorted(f"s3://{IN}/photos/{p.name}" for p in PHOTOS)
    assert all(r["error"] is None and r["quality_error"] is None and r["content_error"] is None for r in rows)
    # the video was read from the bucket; its winning frame was written to OUT/frames and analysed from there
    assert frames and all(r["source_video_uri"] == f"s3://{IN}/photos/clips/{VIDEO.name}" for r in frames)
    assert all(r["uri"].startswith(f"s3://{OUT}/by-config/frames/") for r in frames)

    keys = _keys(s3, "by-config/")
    meta = [json.loads(line) for line in _text(s3, "by-config/metadata.jsonl").splitlines()]
    exported = [m for m in meta if m["file"]]
    assert len(exported) >= len(PHOTOS) - 1 and all(m["export_error"] is None for m in meta)
    for m in exported:
        name = m["file"].split("/", 1)[1]
        assert m["file"] in keys and f"train/10_person/{name}" in keys
        assert f"train/10_person/{name.rsplit('.', 1)[0]}.txt" in keys
    for m in exported:   # the originals, byte for byte
        bucket, key = m["uri"].split("://", 1)[1].split("/", 1)
        original = s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert s3.client.get_object(Bucket=OUT, Key=f"by-config/{m['file']}")["Body"].read() == original
    assert "metadata.parquet" in keys and "manifest.json" in keys

    state = json.loads(_text(s3, "by-config/.raycurate-run.json"))   # the resume state lives in the bucket
    assert state["state"] == "finished"
    manifest_text = _text(s3, "by-config/manifest.json")
    assert s3.secret not in manifest_text and s3.key_id not in manifest_text   # no secret, not even in `command`
    manifest = json.loads(manifest_text)
    assert manifest["run_id"] == state["run_id"]
    assert manifest["config"]["storage"]["s3"]["secret_access_key"] == storage.REDACTED
    assert manifest["config"]["storage"]["s3"]["endpoint_url"] == s3.endpoint
    assert manifest["output"] == {"dir": f"s3://{OUT}/by-config", "db": f"s3://{OUT}/by-config/db", "table": "images"}
    assert manifest["counts"]["rows_written"] == len(rows) and manifest["counts"]["decode_errors"] == 0


def test_export_and_search_read_a_db_in_the_bucket(s3, by_config, capsys):
    assert by_config == 0
    assert main(["export", f"s3://{OUT}/by-config", "--out", f"s3://{OUT}/re-export", "--set",
                 "export.kohya.enabled=false", *_by_config(s3)]) == 0
    keys = _keys(s3, "re-export/")
    meta = [json.loads(line) for line in _text(s3, "re-export/metadata.jsonl").splitlines()]
    assert meta and all(m["file"] in keys for m in meta if m["file"]) and not any(k.startswith("train/") for k in keys)

    capsys.readouterr()
    target = next(m for m in meta if m["uri"].endswith("/obama.jpg"))
    assert main(["search", f"s3://{OUT}/by-config", "--id", target["id"][:16], "-k", "2", "--json",
                 *_by_config(s3)]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert hits[0]["id"] == target["id"] and hits[0]["distance"] < 1e-5
    assert hits[0]["thumbnail"].startswith(f"s3://{OUT}/by-config/db/thumbnails/")   # written into the bucket
    assert hits[0]["thumbnail"].split(f"s3://{OUT}/", 1)[1] in _keys(s3, "")


@pytest.mark.slow   # a subprocess run (4 s)
def test_run_by_environment_in_a_subprocess(s3, by_env):
    """The `raycurate` command with AWS_* only (see `by_env`)."""
    _, stderr = by_env.communicate(timeout=300)
    assert by_env.returncode == 0, stderr[-3000:]
    rows = _rows(s3, f"s3://{OUT}/by-env/db")
    assert sorted(r["uri"] for r in rows) == sorted(f"s3://{IN}/small/{p.name}" for p in SMALL)
    assert all(r["error"] is None for r in rows)
    keys = _keys(s3, "by-env/")
    assert {"manifest.json", "metadata.jsonl", ".raycurate-run.json"} <= set(keys)
    assert sum(k.startswith("images/") for k in keys) == len(SMALL)
    manifest = _text(s3, "by-env/manifest.json")
    assert s3.secret not in manifest
    assert json.loads(manifest)["config"]["storage"]["s3"]["secret_access_key"] is None   # it came from the env


def test_resume_state_lives_in_the_bucket(s3):
    from raycurate.run_state import RUN_STATE, read_state as _read_state, write_state as _write_state

    cfg = load_config(overrides=[parse_set(a) for a in _by_config(s3)[1::2]])   # the --set values
    storage.configure(cfg["storage"])
    out = f"s3://{OUT}/state-only/"
    assert _read_state(out) is None
    _write_state(out, {"run_id": "r1", "state": "running"})
    _write_state(out, {"run_id": "r1", "state": "finished"})
    assert _read_state(out) == {"run_id": "r1", "state": "finished"}
    assert _keys(s3, "state-only/") == [RUN_STATE]


def _no_ray(monkeypatch):
    import raycurate.engine

    def refuse(*_a, **_k):
        raise AssertionError("Ray was started before the storage error was found")

    monkeypatch.setattr(raycurate.engine, "init_ray", refuse)


def test_wrong_secret_is_one_clear_line_before_ray(s3, monkeypatch, capsys):
    _no_ray(monkeypatch)
    capsys.readouterr()
    rc = main(["run", f"s3://{IN}/photos", "--out", f"s3://{OUT}/never", *FAST, *_by_config(s3, "not-the-secret")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("raycurate: error: cannot access s3://raycurate-in/photos") and "access denied" in err
    assert "not-the-secret" not in err and s3.secret not in err
    assert not _keys(s3, "never/")


@pytest.mark.parametrize("where", ["input", "out", "db"])
def test_missing_bucket_is_one_clear_line_before_ray(s3, monkeypatch, capsys, where):
    _no_ray(monkeypatch)
    inp = "s3://no-such-bucket/photos" if where == "input" else f"s3://{IN}/photos"
    out = "s3://no-such-bucket/out" if where == "out" else f"s3://{OUT}/never"
    db = ["--db", "s3://no-such-bucket/db"] if where == "db" else []
    capsys.readouterr()
    rc = main(["run", inp, "--out", out, *db, *FAST, *_by_config(s3)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "no bucket named 'no-such-bucket'" in err


# -- settings, without a server ----------------------------------------------------------------------

def test_config_beats_environment_and_credentials_come_as_a_set():
    env = {"AWS_ENDPOINT_URL": "http://env:9000", "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret",
           "AWS_SESSION_TOKEN": "envtoken", "AWS_DEFAULT_REGION": "eu-west-1"}
    only_env = storage.resolve(load_config()["storage"], env)["s3"]
    assert only_env["endpoint_url"] == "http://env:9000" and only_env["allow_http"] is True
    assert (only_env["access_key_id"], only_env["secret_access_key"], only_env["session_token"]) == \
        ("ENVKEY", "envsecret", "envtoken")
    assert only_env["region"] == "eu-west-1"
    assert storage.resolve({}, {"AWS_ENDPOINT_URL_S3": "https://s3only", "AWS_ENDPOINT_URL": "http://all"}
                           )["s3"]["endpoint_url"] == "https://s3only"

    cfg = load_config(overrides=[("storage.s3.endpoint_url", "https://acc.r2.cloudflarestorage.com"),
                                 ("storage.s3.access_key_id", "CFGKEY"), ("storage.s3.secret_access_key", "cfgsecret"),
                                 ("storage.s3.region", "auto")])
    s3 = storage.resolve(cfg["storage"], env)["s3"]
    assert (s3["endpoint_url"], s3["access_key_id"], s3["secret_access_key"], s3["session_token"], s3["region"]) == \
        ("https://acc.r2.cloudflarestorage.com", "CFGKEY", "cfgsecret", None, "auto")   # env token not mixed in
    assert s3["allow_http"] is False
    assert storage.s3_filesystem_kwargs(s3) == {"endpoint_override": "acc.r2.cloudflarestorage.com",
                                                "scheme": "https", "region": "auto", "access_key": "CFGKEY",
                                                "secret_key": "cfgsecret"}
    assert storage.lance_storage_options("s3://b/db", cfg["storage"]) == {
        "aws_endpoint": "https://acc.r2.cloudflarestorage.com", "aws_region": "auto",
        "aws_access_key_id": "CFGKEY", "aws_secret_access_key": "cfgsecret"}
    anon = storage.resolve({"s3": {"anonymous": True, "endpoint_url": "http://127.0.0.1:9000"}}, {})["s3"]
    assert storage.s3_filesystem_kwargs(anon) == {"endpoint_override": "127.0.0.1:9000", "scheme": "http",
                                                  "anonymous": True}
    assert storage.lance_storage_options("s3://b/db", {"s3": anon}) == {
        "aws_endpoint": "http://127.0.0.1:9000", "allow_http": "true", "aws_skip_signature": "true"}


def test_storage_config_is_validated_without_echoing_secrets():
    with pytest.raises(ConfigError, match="storage.s3.endpoint_url must be a URL"):
        load_config(overrides=[("storage.s3.endpoint_url", "minio:9000")])
    with pytest.raises(ConfigError, match="secret_access_key is not"):
        load_config(overrides=[("storage.s3.access_key_id", "AKIA")])
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[("storage.s3.access_key_id", "AKIA"), ("storage.s3.secret_access_key", 12345678)])
    assert "12345678" not in str(info.value)
    with pytest.raises(ConfigError, match="unknown config key: storage.s3.secret"):
        load_config(overrides=[("storage.s3.secret", "x")])


def test_secrets_are_redacted_from_config_and_command_line():
    cfg = load_config(overrides=[("storage.s3.access_key_id", "AKIA"), ("storage.s3.secret_access_key", "hush"),
                                 ("storage.s3.session_token", "tok"), ("storage.s3.endpoint_url", "http://m:9000")])
    red = storage.redact(cfg)["storage"]["s3"]
    assert red["secret_access_key"] == red["session_token"] == red["access_key_id"] == storage.REDACTED
    assert red["endpoint_url"] == "http://m:9000" and cfg["storage"]["s3"]["secret_access_key"] == "hush"
    assert storage.redact(load_config())["storage"]["s3"]["secret_access_key"] is None
    argv = ["run", "x", "--set", "storage.s3.secret_access_key=hush", "--set=storage.s3.session_token=tok",
            "--set", "storage.s3.region=eu"]
    assert storage.redact_argv(argv) == ["run", "x", "--set", "storage.s3.secret_access_key=<redacted>",
                                         "--set=storage.s3.session_token=<redacted>", "--set", "storage.s3.region=eu"]


def test_gcs_settings_become_pyarrow_and_lance_arguments(monkeypatch):
    import pyarrow.fs as pafs

    cfg = load_config(overrides=[("storage.gcs.endpoint_url", "http://127.0.0.1:4443"),
                                 ("storage.gcs.project", "proj"), ("storage.gcs.anonymous", True)])
    gcs = storage.resolve(cfg["storage"], {})["gcs"]
    kwargs = storage.gcs_filesystem_kwargs(gcs)
    assert kwargs == {"endpoint_override": "127.0.0.1:4443", "scheme": "http", "anonymous": True,
                      "project_id": "proj"}
    storage.configure(cfg["storage"])
    try:
        fs, path = storage.filesystem("gs://bucket/some/prefix/")   # built, not contacted
        assert isinstance(fs, pafs.GcsFileSystem) and path == "bucket/some/prefix"
        built = fs.__reduce__()[1][0]
        assert (built["endpoint_override"], built["scheme"], built["anonymous"], built["project_id"]) == \
            ("127.0.0.1:4443", "http", True, "proj")
        assert storage.filesystem("gcs://bucket/x")[0] is fs   # the same settings: the cached filesystem
        assert storage.lance_uri("gcs://bucket/db") == "gs://bucket/db"
        assert storage.lance_storage_options("gs://bucket/db") == {
            "google_base_url": "http://127.0.0.1:4443", "allow_http": "true", "google_skip_signature": "true"}
    finally:
        storage.configure(None)

    # the environment: an emulator host means anonymous; a credentials file reaches both libraries
    env = {"STORAGE_EMULATOR_HOST": "localhost:9023", "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
           "GOOGLE_CLOUD_PROJECT": "envproj"}
    gcs = storage.resolve({}, env)["gcs"]
    assert storage.gcs_filesystem_kwargs(gcs) == {"endpoint_override": "localhost:9023", "scheme": "http",
                                                  "anonymous": True, "project_id": "envproj"}
    assert gcs["credentials_file"] == "/keys/sa.json"
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert storage.lance_storage_options("gs://b/db")["google_application_credentials"] == "/keys/sa.json"
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    plain = storage.gcs_filesystem_kwargs(storage.resolve(None)["gcs"])
    assert plain == {"project_id": "envproj"}   # Google's endpoint, default credentials


def test_uri_helpers():
    assert storage.join("s3://b/out/", "db") == "s3://b/out/db"
    assert storage.join("s3://b/out", "images", "x.jpg") == "s3://b/out/images/x.jpg"
    assert storage.join("/tmp/out", "db") == os.path.join("/tmp/out", "db")
    assert storage.split_uri("S3://b/k") == ("s3", "b/k") and storage.bucket_of("gs://bkt/a/b") == "bkt"


def test_a_long_bucket_video_is_split_into_segments_with_one_id(s3, ray_session, tmp_path):
    """A bucket video longer than video.segment_s is probed by range reads and split like a local one; each
    segment's task spools it and decodes its frames, and every segment gets the id of the video's bytes."""
    import hashlib

    import lancedb

    long_video = DATA / "videos" / "testvideo.mp4"   # 24 s: three segments of 8 s
    s3.client.upload_file(str(long_video), IN, f"long/{long_video.name}")
    out = tmp_path / "out"
    rc = main(["run", f"s3://{IN}/long", "--out", str(out), *FAST, "--set", "video.segment_s=8",
               "--set", "video.sample_rate=10", *_by_config(s3)])
    assert rc == 0
    videos = lancedb.connect(str(out / "db")).open_table("videos").search().limit(None).to_list()
    assert sorted((v["segment"], v["frame_start"], v["frame_stop"]) for v in videos) == [
        (0, 0, 240), (1, 240, 480), (2, 480, None)]
    assert {v["uri"] for v in videos} == {f"s3://{IN}/long/{long_video.name}"}
    assert {v["video_id"] for v in videos} == {hashlib.sha256(long_video.read_bytes()).hexdigest()}
    assert all(v["error"] is None for v in videos) and sum(v["frames_decoded"] for v in videos) == 720


def test_a_damaged_db_in_the_bucket_is_said_and_recovered(s3, capsys):
    """``raycurate db check|recover`` on a DB in the bucket: a data object deleted, then the newest version
    object garbled; each is one line and exit 2, recover goes back to the last readable version (the
    garbled object is moved to ``images.lance/_damaged/``)."""
    import lancedb
    import pyarrow as pa

    opts = {"aws_endpoint": s3.endpoint, "aws_region": REGION, "allow_http": "true",
            "aws_access_key_id": s3.key_id, "aws_secret_access_key": s3.secret}
    db, prefix = f"s3://{OUT}/damaged/db", "damaged/db/images.lance/"
    table = lancedb.connect(db, storage_options=opts).create_table("images", pa.table({"id": ["a", "b", "c"]}))
    first = set(k for k in _keys(s3, prefix) if k.startswith("data/"))
    table.add(pa.table({"id": ["d", "e"]}))
    added = [k for k in _keys(s3, prefix) if k.startswith("data/") and k not in first]
    table.add(pa.table({"id": ["f"]}))
    assert len(added) == 1
    s3.client.delete_object(Bucket=OUT, Key=prefix + added[0])   # the rows d, e: versions 2 and 3 lose them
    capsys.readouterr()
    assert main(["db", "check", f"s3://{OUT}/damaged", *_by_config(s3)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{added[0]} is missing" in err and "Traceback" not in err
    assert f"raycurate db recover {db}`: it goes back to version 1 of table images, the last readable one " \
        "(3 rows)" in err
    assert main(["db", "recover", f"s3://{OUT}/damaged", *_by_config(s3)]) == 0
    assert capsys.readouterr().out.strip().endswith("to version 1 (3 rows), written as version 4: rows added after it "
                                                    "are analysed again by the next run")
    assert main(["db", "check", db, *_by_config(s3)]) == 0
    reopened = lancedb.connect(db, storage_options=opts).open_table("images")
    assert sorted(reopened.search().limit(None).to_arrow().column("id").to_pylist()) == ["a", "b", "c"]

    reopened.add(pa.table({"id": ["g"]}))   # version 5, then garbled
    newest = min(k for k in _keys(s3, prefix) if k.startswith("_versions/") and k.endswith(".manifest"))
    s3.client.put_object(Bucket=OUT, Key=prefix + newest, Body=b"junk")
    capsys.readouterr()
    assert main(["db", "check", db, *_by_config(s3)]) == 2
    assert f"{newest} is unreadable" in capsys.readouterr().err
    assert main(["db", "recover", db, *_by_config(s3)]) == 0
    assert "to version 4 (3 rows); moved 1 unreadable version file(s)" in capsys.readouterr().out
    assert f"_damaged/{newest}" in _keys(s3, prefix) and newest not in _keys(s3, prefix)
    assert main(["db", "check", db, *_by_config(s3)]) == 0
