import io

import numpy as np
import pytest
from PIL import Image

from raycurate.decode import DecodeError, decode_image

from .conftest import IMAGES


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("n", range(2, 9))
def test_exif_rotated_hoppers_come_out_upright(n):
    upright = decode_image((IMAGES / "faces" / "pillow_hopper.jpg").read_bytes()).rgb.astype(float)
    data = (IMAGES / "exif" / f"hopper_orientation_{n}.jpg").read_bytes()
    img = decode_image(data)
    raw = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)
    assert img.orientation == n
    assert img.rgb.shape == upright.shape
    # Same picture up to JPEG noise once turned upright; far from it as stored.
    assert np.abs(img.rgb.astype(float) - upright).mean() < 8.0
    assert np.abs(raw - upright).mean() > 40.0


def test_bad_exif_block_still_loads():
    img = decode_image((IMAGES / "exif" / "hopper_bad_exif.jpg").read_bytes())
    assert img.rgb.shape == (500, 500, 3) and img.rgb.dtype == np.uint8
    assert img.warning and "EXIF" in img.warning


def test_grey_becomes_rgb():
    img = decode_image((IMAGES / "faces" / "skimage_camera.png").read_bytes())
    assert img.mode == "L" and img.rgb.shape == (512, 512, 3)
    assert (img.rgb[..., 0] == img.rgb[..., 1]).all()


def test_rgba_drops_alpha_onto_white():
    img = decode_image((IMAGES / "face_recognition" / "32bit.png").read_bytes())
    assert img.mode == "RGBA" and img.rgb.shape == (1200, 626, 3)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2] = (255, 0, 0, 255)          # opaque red on top, fully transparent black below
    out = decode_image(_png(Image.fromarray(rgba, "RGBA"))).rgb
    assert (out[0, 0] == (255, 0, 0)).all() and (out[3, 3] == (255, 255, 255)).all()


def test_16_bit_grey_scales_to_8_bit():
    arr = np.array([[0, 32896, 65535]], dtype=np.uint16)
    img = decode_image(_png(Image.fromarray(arr)))
    assert img.mode.startswith("I")
    assert img.rgb[0, :, 0].tolist() == [0, 128, 255]


def test_palette_and_palette_transparency():
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert decode_image(_png(pal)).rgb[0, 0].tolist() == [10, 200, 30]
    pal.info["transparency"] = 1
    assert decode_image(_png(pal, transparency=1)).rgb[0, 0].tolist() == [255, 255, 255]


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 0))   # no ink: white
    img = decode_image(_png(cmyk, "JPEG", quality=95))
    assert img.mode == "CMYK" and img.rgb.shape == (8, 8, 3)
    assert img.rgb.mean() > 245


def test_float_and_bilevel_modes():
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert decode_image(_png(f, "TIFF")).rgb[0, :, 0].tolist() == [0, 128, 255]
    one = Image.new("1", (3, 3), 1)
    assert decode_image(_png(one)).rgb.min() == 255


def test_animated_gif_gives_first_frame():
    data = (IMAGES / "negatives" / "skimage_no_time_for_that_tiny.gif").read_bytes()
    img = decode_image(data)
    assert img.n_frames == 24
    first = Image.open(io.BytesIO(data))
    first.seek(0)
    assert np.array_equal(img.rgb, np.asarray(first.convert("RGB")))
    second = Image.open(io.BytesIO(data))
    second.seek(5)
    assert not np.array_equal(img.rgb, np.asarray(second.convert("RGB")))


def test_max_side_scales_but_keeps_original_size():
    img = decode_image((IMAGES / "face_recognition" / "obama3.jpg").read_bytes(), max_side=1000)
    assert max(img.rgb.shape[:2]) == 1000
    assert (img.width, img.height) == (1434, 2333)
    assert abs(img.rgb.shape[1] / img.rgb.shape[0] - img.width / img.height) < 0.01


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"this is not an image", "not a readable image"),
])
def test_undecodable_bytes(data, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_image(data)


def test_corrupt_and_truncated_files_raise_decode_error():
    with pytest.raises(DecodeError):
        decode_image((IMAGES / "neardup" / "mixed_images" / "ukbench09268_corrupt.jpg").read_bytes())
    jpeg = (IMAGES / "faces" / "matplotlib_grace_hopper.jpg").read_bytes()
    with pytest.raises(DecodeError, match="truncated|corrupt"):
        decode_image(jpeg[: len(jpeg) // 2])


def test_pixel_limit():
    with pytest.raises(DecodeError, match="too large"):
        decode_image((IMAGES / "faces" / "skimage_astronaut.png").read_bytes(), max_pixels=1000)


def test_a_failing_pil_plugin_is_a_decode_error(monkeypatch):
    """Libraries register PIL openers (ultralytics adds a HEIF one that imports pi_heif lazily);
    whatever such a plugin raises, a bad file stays a DecodeError."""
    import PIL.Image

    def broken_open(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'pi_heif'")

    monkeypatch.setattr(PIL.Image, "open", broken_open)
    with pytest.raises(DecodeError, match="pi_heif"):
        decode_image((IMAGES / "faces" / "pillow_hopper.jpg").read_bytes())


def test_table_of_makes_the_table_from_pylist_makes_with_binary_columns_joined():
    import numpy as np
    import pyarrow as pa

    from raycurate.rows import FRAME_ROW_SCHEMA, table_of

    rng = np.random.default_rng(0)
    rows = [{"video_id": "v", "frame_index": i, "pixels": rng.integers(0, 255, 300 * i, dtype=np.uint8).tobytes(),
             "pixels_h": 10, "pixels_w": 10 * i, "full_pixels": None if i % 2 else b"\xff\xd8" * i,
             "cuts": [1, 2] if i == 3 else None, "unknown_key": "ignored"} for i in range(6)]
    rows.append({"video_id": "v", "frame_index": -1})   # an end row: no pixels at all
    rows.append({"video_id": "v", "frame_index": 7, "pixels": b""})   # empty, not null
    assert table_of(rows, FRAME_ROW_SCHEMA).equals(pa.Table.from_pylist(rows, schema=FRAME_ROW_SCHEMA))
    small = pa.schema([pa.field("b", pa.binary())])   # 32-bit offsets; any bytes-like value
    assert table_of([{"b": np.zeros((2, 3), np.uint8)}, {"b": memoryview(b"abc")}, {"b": bytearray(b"xy")}, {}],
                    small).column("b").to_pylist() == [b"\0" * 6, b"abc", b"xy", None]
    assert table_of([], FRAME_ROW_SCHEMA).num_rows == 0
