"""Settings of where a run runs and how it reads: ray, input, decode, video, cascade, models, storage."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .schema import (DEVICE, FRACTION, GPUS, MULTIPLE_OF_32, Check, Section, Widget, auto_or_positive, between,
                     non_negative, one_of, positive, section, setting)

_URL = Check(lambda v: v.startswith(("http://", "https://")) and len(v.split("://", 1)[1].strip("/")) > 0,
             "a URL such as http://host:9000 or https://host")


@dataclass(frozen=True)
class RaySettings(Section):
    address: str | None = setting(None, 'null: start a local Ray; "auto" or "ray://host:10001": join a cluster')
    num_cpus: int | float | None = setting(None, "local Ray only; null: all cores", positive("a positive number"))
    num_gpus: int | float | None = setting(None, "local Ray only; null: detect", non_negative())
    gpu_memory_gb: float | str = setting("auto", "memory of one GPU (GB); sizes fractional GPUs and auto batch "
                                         "sizes. auto: read on every node when the run starts, the smallest "
                                         "card governs (docs/concepts/engine.md, GPU sizing)",
                                         auto_or_positive("a positive number"))
    object_store_memory_gb: float | None = setting(
        2.0, "local Ray only: GB of shared memory for Ray's object store, the blocks in flight between stages "
        "(every worker that touches a page of it counts it in its memory). null: Ray's default, 30% of the "
        "machine's memory", positive("a positive number"))
    block_mb: float = setting(
        16.0, "largest block (MB) Ray Data hands from one stage to the next. Ray's default, 128, packs ~66 "
        "sampled frames in a block: a stage then waits for its object-store budget to hold a whole block and "
        "falls behind (measured: Stage 1 idle while photos ran, scripts/bench_run.py)",
        positive("a positive number"))
    fuse_cpu_analyzers: bool | str = setting(
        "auto", "image path: consecutive CPU analysers share actor pools, as many pools as the cluster has CPUs, "
        "the first decoding its own files, and the driver stores the rows (a process per pool instead of one per "
        "analyser, decode task and write task: less memory, same rows); video path: each CPU stage keeps one actor "
        "unless its max_actors is set (memory does not grow with the number of videos). auto: on clusters of at "
        "most 4 CPUs",
        Check(lambda v: isinstance(v, bool) or v == "auto", "true, false or auto"))
    fused_layout: str = setting(
        "copies", "fused image pools (fuse_cpu_analyzers): copies: one pool of them all, one actor per CPU, each "
        "running every analyser on its own batches (no pixels between pools, no pool waiting for a slower one; "
        "every actor holds every model: 1.8x the images/s of split on 2 CPUs, scripts/bench_images.py); split: "
        "the analysers cut into consecutive groups, one pool of one actor per CPU, each batch passing through "
        "them all in turn (each model loaded once)",
        Check(lambda v: v in ("split", "copies"), "split or copies"))


@dataclass(frozen=True)
class InputSettings(Section):
    max_files: int | None = setting(None, "stop listing after this many files (a trial run)", positive())
    read_threads: int = setting(16, "threads used to sniff file types while listing", positive())
    follow_links: bool = setting(False, "follow symlinks that lead outside INPUT; loops are never followed")


@dataclass(frozen=True)
class DecodeSettings(Section):
    max_side: int = setting(2048, "images are analysed at most this large (originals are exported untouched)",
                            positive())
    max_pixels: int = setting(178956970, "larger images are refused (decompression-bomb guard)", positive())
    batch_size: int = setting(16, "files read and decoded per Ray task", positive())
    num_cpus: float = setting(0.25, "logical CPUs per decode task", positive("a positive number"))
    rows_per_write: int = setting(64, "rows gathered per LanceDB append (one fragment each)", positive())


@dataclass(frozen=True)
class VideoSettings(Section):
    enabled: bool = setting(True, "false: videos are listed and counted only")
    sample_rate: int = setting(
        15, "Frames stepped between candidates (1 = every frame, 5 = one in five). Lower finds more moments; "
        "costs more decoding and analysis.", positive(), widget=Widget("Sample rate", 1, 60, 1))
    min_separation: int = setting(
        30, "Chosen frames are at least this many source frames apart. Higher gives more varied frames; may "
        "skip a good one next to another.", non_negative("an integer >= 0"),
        widget=Widget("Minimum separation", 0, 300, 1))
    max_frames: int | None = setting(
        100, "At most this many frames kept per video. Higher keeps more; more near duplicates to review.",
        positive(), widget=Widget("Maximum frames per video", 1, 500, 1))
    motion_threshold: float = setting(
        3.0, "Share of pixels (%) that must change since the last kept frame. 0-20 keeps similar frames; "
        "25-50 keeps only clearly different ones (fewer frames to analyse).", between(0, 100),
        widget=Widget("Motion threshold (%)", 0, 100, 0.5))
    scene_detection: bool = setting(
        False, "Find cuts (PySceneDetect): frames near a cut score higher and each scene keeps its best frame. "
        "Fed while decoding (no second read); costs a small copy of every frame.", widget=Widget("Scene detection"))
    scene_detector: str = setting("content", "PySceneDetect's detector", one_of("content", "adaptive"))
    scene_bonus: float = setting(0.2, "score bonus (fraction) of a frame near a cut", non_negative())
    scene_window_s: float = setting(0.5, '"near a cut": within this many seconds of it', non_negative())
    analysis_side: int = setting(960, "frames go through the cascade at most this large (a winner is written "
                                 "from its full-size pixels, kept through the cascade)", positive())
    batch_size: int | str = setting(
        "auto", "Frames analysed together by each stage (and so each stage's GPU fraction), unless set per stage. "
        "auto: each stage's from the GPU's memory class (docs/concepts/engine.md, GPU sizing), 16 on the CPU.",
        auto_or_positive(),
        cpu_default=16)
    num_cpus: float = setting(1.0, "logical CPUs per video decode task", positive("a positive number"))
    segment_s: int | float | None = setting(120, "a longer video is split into segments of this many "
                                            "seconds, decoded in parallel (null: never)",
                                            positive("a positive number"))
    decoders: list[str] = setting(["decord", "pyav", "opencv"], "tried in this order",
                                  Check(lambda v: bool(v) and all(d in ("decord", "pyav", "opencv") for d in v),
                                        "a non-empty list of: decord, pyav, opencv"))
    decord_device: str = setting("cpu", "gpu: NVDEC (needs a decord built with CUDA, else cpu with a warning)",
                                 one_of("cpu", "gpu"))
    frame_quality: int = setting(95, "JPEG quality of the winning frames written to OUT/frames",
                                 between(1, 100, "an integer in [1, 100]"))


@dataclass(frozen=True)
class StageSettings(Section):
    device: str = setting("cpu", "cpu, cuda or cuda:N", DEVICE)
    batch_size: int | None = setting(None, "null: video.batch_size", positive())
    num_cpus: float = setting(0.5, "logical CPUs per actor", positive("a positive number"))
    min_actors: int = setting(1, "actors started up front", positive())
    max_actors: int | None = setting(None, "null: as many as the cluster can hold", positive())
    num_gpus: int | float | None = setting(None, "GPUs per actor; null: sized from batch_size and the model's "
                                           "GPU memory (docs/concepts/engine.md)", GPUS)
    threshold: float = setting(0.35, "score a frame needs to go on", FRACTION)


@dataclass(frozen=True)
class Stage1Settings(StageSettings):
    threshold: float = setting(
        0.15, "Quality + face score a sampled frame needs to reach Stage 2. Higher drops more frames early "
        "(faster); may lose usable ones.", FRACTION, widget=Widget("Video Stage 1 threshold", 0, 1, 0.01))
    det_size: int | None = setting(480, "face detection input in Stage 1 (detection only): 480 finds faces down "
                                   "to ~6% of the frame's longer side, 1.8x faster than 640 on the CPU; null: "
                                   "analyzers.face.det_size", MULTIPLE_OF_32)
    det_thresh: int | float | None = setting(0.4, "low, recall first; null: analyzers.face.det_thresh", FRACTION)
    keep_faceless: bool = setting(False, "true: frames without a face go on to Stage 2 too (scenery datasets); "
                                  "false: they stop at Stage 1")
    best_per_window: int | None = setting(
        2, "of one video's frames within one window of video.min_separation source frames (which cannot both "
        "win), only this many best by the Stage 1 score go on to Stage 2; null: all that pass", positive())


@dataclass(frozen=True)
class Stage2Settings(StageSettings):
    threshold: float = setting(0.35, "Score after content and NSFW checks needed to reach Stage 3.", FRACTION,
                               widget=Widget("Video Stage 2 threshold", 0, 1, 0.01))


def _weight(default: float, what: str) -> float:
    return setting(default, what, non_negative())


@dataclass(frozen=True)
class Stage3Weights(Section):
    face_sharpness: float = _weight(0.25, "main face's crop sharpness")
    sharpness: float = _weight(0.1, "frame sharpness")
    exposure: float = _weight(0.15, "exposure")
    face_area: float = _weight(0.2, "main face's size")
    one_face: float = _weight(0.1, "exactly one face")
    contrast: float = _weight(0.1, "contrast")
    nsfw_safe: float = _weight(0.1, "1 - NSFW score")


@dataclass(frozen=True)
class Stage3Settings(Section):
    threshold: float = setting(
        0.45, "Ensemble score (sharpness, exposure, face size, ...) a frame needs to be a winner candidate.",
        FRACTION, widget=Widget("Video Stage 3 threshold", 0, 1, 0.01))
    weights: Stage3Weights = section(Stage3Weights, "the ensemble's weights over stored scores")


@dataclass(frozen=True)
class CascadeSettings(Section):
    stage1: Stage1Settings = section(Stage1Settings, "quality + face detection: fast, recall first")
    stage2: Stage2Settings = section(Stage2Settings, "face features, content vector, NSFW; CLIP, emotion if present")
    stage3: Stage3Settings = section(Stage3Settings, "ensemble of stored scores, per video; no model")


@dataclass(frozen=True)
class ModelsSettings(Section):
    dir: str | None = setting(None, "models directory; null: $RAYCURATE_MODELS or ~/.cache/raycurate/models")
    profile: str = setting("auto", "auto: full model where its weights are present, offline fallback otherwise; "
                           "strict: fail", one_of("auto", "strict"))
    pull_on_nodes: bool = setting(False, "true: a Ray node downloads the models it lacks before actors start; "
                                  "false: the run stops naming the node")


@dataclass(frozen=True)
class S3Settings(Section):
    endpoint_url: str | None = setting(None, "e.g. http://minio:9000; null: $AWS_ENDPOINT_URL_S3, "
                                       "$AWS_ENDPOINT_URL, else AWS", _URL)
    region: str | None = setting(None, "null: $AWS_REGION, $AWS_DEFAULT_REGION, else found from the bucket")
    access_key_id: str | None = setting(None, "null: $AWS_ACCESS_KEY_ID (id, secret and token come together)",
                                        secret=True)
    secret_access_key: str | None = setting(None, "null: $AWS_SECRET_ACCESS_KEY", secret=True)
    session_token: str | None = setting(None, "null: $AWS_SESSION_TOKEN", secret=True)
    anonymous: bool = setting(False, "true: unsigned requests (public buckets)")
    allow_http: bool | None = setting(None, "null: true when endpoint_url is http://")


@dataclass(frozen=True)
class GcsSettings(Section):
    endpoint_url: str | None = setting(None, "null: $STORAGE_EMULATOR_HOST (an emulator: anonymous), else Google",
                                       _URL)
    project: str | None = setting(None, "null: $GOOGLE_CLOUD_PROJECT (only needed to create buckets)")
    anonymous: bool = setting(False, "true: unsigned requests (public buckets)")
    credentials_file: str | None = setting(None, "service account JSON; null: $GOOGLE_APPLICATION_CREDENTIALS, "
                                           "else gcloud's default", Check(lambda v: bool(v.strip()), "a file path"))


@dataclass(frozen=True)
class StorageSettings(Section):
    s3: S3Settings = section(S3Settings, "AWS S3 and S3-compatible stores (MinIO, Cloudflare R2, Ceph)")
    gcs: GcsSettings = section(GcsSettings, "Google Cloud Storage")


SECRET_KEYS = frozenset(f"storage.s3.{f.name}" for f in dataclasses.fields(S3Settings) if f.metadata["secret"])
