"""Writes the image folders the import test uses, with Pillow (python3-pil) and by hand, and the
reference arrays Pillow computes for them.   make_image_folder.py OUT_DIR

OUT_DIR/good/   class folders a/ b/ c/ (nested sub-folders too) with PNG and JPEG in RGB, grey, RGBA,
                palette, 16-bit grey, 16-bit RGB, CMYK JPEG, progressive JPEG, EXIF-rotated JPEG,
                WebP, non-square sizes, and a text file (not an image by extension: ignored)
OUT_DIR/bad/    the same good files plus every kind of bad file (the test expects each skipped)
OUT_DIR/reference.npz   for good/: Pillow's decode + centre crop + bicubic resize to 16x16 of
                each file, in sorted path order, with the expected labels
"""
import io, os, struct, sys, zlib
import numpy as np
from PIL import Image

out = sys.argv[1]
size = 16
rng = np.random.default_rng(7)


def smooth_rgb(w, h):
    """A smooth colour image (gradients and a blob): resizing it is well-conditioned."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 255 * np.exp(-(((x - w / 3) / (w / 4)) ** 2 + ((y - h / 2) / (h / 4)) ** 2))
    return np.clip(np.stack([r, g, b], -1) + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16_rgb(path, pixels16):
    """A 16-bit RGB PNG by hand (Pillow cannot write one)."""
    h, w, _ = pixels16.shape
    raw = b"".join(b"\0" + pixels16[row].astype(">u2").tobytes() for row in range(h))
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    data += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    open(path, "wb").write(data)


def write_png_header_only(path, w, h):
    """A PNG whose header declares w x h pixels: a decompression bomb's signature."""
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    data += png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")
    open(path, "wb").write(data)


def exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


# (relative path, writer) for the good files; each writer saves the file and returns the image as
# Pillow sees it after loading (the reference then uses Image.open on the saved file anyway).
good = []


def add(rel, save):
    good.append((rel, save))


add("a/rgb_wide.png", lambda p: Image.fromarray(smooth_rgb(40, 24)).save(p))
add("a/grey_tall.png", lambda p: Image.fromarray(smooth_rgb(20, 36)[..., 1]).save(p))
add("a/rgba.png", lambda p: Image.fromarray(np.dstack([smooth_rgb(32, 32), np.full((32, 32), 128, np.uint8)])).save(p))
add("a/palette.png", lambda p: Image.fromarray(smooth_rgb(30, 30)).quantize(16).save(p))
add("a/nested/deeper/rgb.jpg", lambda p: Image.fromarray(smooth_rgb(48, 32)).save(p, quality=95))
add("b/progressive.jpg", lambda p: Image.fromarray(smooth_rgb(33, 47)).save(p, quality=95, progressive=True))
add("b/cmyk.jpg", lambda p: Image.fromarray(smooth_rgb(32, 32)).convert("CMYK").save(p, quality=95))
add("b/grey.jpg", lambda p: Image.fromarray(smooth_rgb(32, 40)[..., 0]).save(p, quality=95))
add("b/UPPER.JPEG", lambda p: Image.fromarray(smooth_rgb(16, 16)).save(p, format="JPEG", quality=95))
for orientation in (3, 6, 8):
    add(f"c/exif{orientation}.jpg", lambda p, o=orientation: Image.fromarray(smooth_rgb(40, 24)).save(
        p, quality=95, exif=exif_orientation(o)))
add("c/lossless.webp", lambda p: Image.fromarray(smooth_rgb(24, 24)).save(p, lossless=True))
add("c/small_enlarged.png", lambda p: Image.fromarray(smooth_rgb(10, 12)).save(p))


def grey16(p):
    v = (np.mgrid[0:24, 0:24][1] * 2700).astype(np.uint16)  # 0 .. 62100
    Image.fromarray(v, mode="I;16").save(p)


def rgb16(p):
    write_png16_rgb(p, smooth_rgb(20, 20).astype(np.uint16) * 256 + 100)


add("c/grey16.png", grey16)
add("c/rgb16.png", rgb16)


def reference(path, mode="RGB"):
    """What distgan should produce, computed with Pillow alone."""
    from PIL import ImageOps
    img = Image.open(path)
    if path.endswith("grey16.png"):  # Pillow keeps 16 bits ("I;16"); scale to 8 with rounding
        a = np.asarray(img).astype(np.float64)
        img = Image.fromarray(np.round(a * 255 / 65535).astype(np.uint8))
    elif path.endswith("rgb16.png"):  # Pillow truncates 16-bit RGB to the high byte: rebuild it
        raw = smooth_rgb_cache[path].astype(np.float64) * 256 + 100
        img = Image.fromarray(np.round(raw * 255 / 65535).astype(np.uint8))
    img = ImageOps.exif_transpose(img).convert(mode)
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    a = np.asarray(img)
    return a.transpose(2, 0, 1) if a.ndim == 3 else a[None]


smooth_rgb_cache = {}
for folder in ("good", "bad"):
    for rel, save in good:
        path = os.path.join(out, folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        state = rng.bit_generator.state
        if rel.endswith("rgb16.png"):
            pixels = smooth_rgb(20, 20)
            smooth_rgb_cache[path] = pixels
            write_png16_rgb(path, pixels.astype(np.uint16) * 256 + 100)
        else:
            save(path)
    open(os.path.join(out, folder, "a", "notes.txt"), "w").write("not an image by extension: ignored\n")

# The bad files, in bad/ only. Names sort after the good ones' in their folders.
bad = os.path.join(out, "bad")
jpeg = io.BytesIO()
Image.fromarray(smooth_rgb(64, 64)).save(jpeg, format="JPEG", quality=90)
jpeg = jpeg.getvalue()
open(os.path.join(bad, "c", "z_truncated.jpg"), "wb").write(jpeg[: len(jpeg) // 2])
png = io.BytesIO()
Image.fromarray(smooth_rgb(64, 64)).save(png, format="PNG")
png = png.getvalue()
open(os.path.join(bad, "c", "z_truncated.png"), "wb").write(png[: len(png) // 2])
corrupt = bytearray(png)
corrupt[60:90] = b"\x55" * 30  # inside IDAT: the CRC and the deflate stream break
open(os.path.join(bad, "c", "z_corrupt.png"), "wb").write(bytes(corrupt))
open(os.path.join(bad, "c", "z_empty.png"), "wb").close()
open(os.path.join(bad, "c", "z_text.jpg"), "w").write("this is not a JPEG\n")
write_png_header_only(os.path.join(bad, "c", "z_bomb.png"), 50000, 50000)
bomb = bytearray(jpeg)  # SOF0's height and width set to 60000 x 60000
sof = bomb.index(b"\xff\xc0")
bomb[sof + 5: sof + 9] = struct.pack(">HH", 60000, 60000)
open(os.path.join(bad, "c", "z_bomb.jpg"), "wb").write(bytes(bomb))
os.symlink("/nonexistent/file.png", os.path.join(bad, "c", "z_dangling.png"))
os.makedirs(os.path.join(bad, "c", "z_folder.png"))  # a directory with an image's name: not listed

paths = sorted(os.path.join(out, "good", rel) for rel, _ in good)
classes = sorted({rel.split("/")[0] for rel, _ in good})
np.savez(os.path.join(out, "reference.npz"),
         images=np.stack([reference(p) for p in paths]),
         grey=np.stack([reference(p, "L") for p in paths]),
         labels=np.array([classes.index(os.path.relpath(p, os.path.join(out, "good")).split("/")[0]) for p in paths]),
         names=np.array([os.path.relpath(p, os.path.join(out, "good")) for p in paths]))
print(f"wrote {len(good)} good and 9 bad files under {out}")
