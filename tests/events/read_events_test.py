#!/usr/bin/python3
"""Reads the event file that write_events_demo writes, independently of the C++ code: the TFRecord
framing and CRC-32C checked in Python, the events decoded with protobuf's Python runtime from a
module that protoc generates (at test time) from trainer/outputs/events/tensorboard_event.proto.

usage: read_events_test.py DRIVER PROTO   (exit 77, skipped, without protoc or python3-protobuf)
"""
import glob, os, re, shutil, socket, struct, subprocess, sys, tempfile, time, zlib

failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok:
        failures.append(name)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    at, out = 0, []
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        (length_crc,) = struct.unpack_from("<I", data, at + 8)
        if length_crc != masked(crc32c(data[at:at + 8])):
            raise ValueError("bad length checksum at byte %d" % at)
        payload = data[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack_from("<I", data, at + 12 + length)
        if len(payload) != length or data_crc != masked(crc32c(payload)):
            raise ValueError("bad data checksum at byte %d" % at)
        out.append(payload)
        at += 16 + length
    return out


def png_pixels(png):
    """(width, height, channels, rows of bytes) of an 8-bit gray or RGB PNG, filters undone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
    at, idat, header = 8, b"", None
    while at < len(png):
        (length,) = struct.unpack_from(">I", png, at)
        kind, body = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        assert struct.unpack_from(">I", png, at + 8 + length)[0] == zlib.crc32(kind + body), "bad chunk crc"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    width, height, depth, color = header[:4]
    assert depth == 8 and color in (0, 2), "unexpected PNG type %s" % (header,)
    channels = 1 if color == 0 else 3
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1: line[i] = (line[i] + a) & 255
            elif kind == 2: line[i] = (line[i] + b) & 255
            elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def main():
    driver, proto = sys.argv[1], os.path.abspath(sys.argv[2])
    protoc = shutil.which("protoc")
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        protoc = None
    if not protoc:
        print("SKIP: needs protoc and python3-protobuf")
        return 77
    tmp = tempfile.mkdtemp()
    try:
        subprocess.run([protoc, "-I", os.path.dirname(proto), "--python_out", tmp, proto], check=True)
        sys.path.insert(0, tmp)
        import tensorboard_event_pb2 as pb

        start = time.time()
        out = subprocess.run([driver, os.path.join(tmp, "tb")], check=True, capture_output=True, text=True)
        files = glob.glob(os.path.join(tmp, "tb", "*"))
        check("one event file", len(files) == 1, str(files))
        check("driver prints the path", out.stdout.strip() == files[0], out.stdout)
        name = os.path.basename(files[0])
        m = re.fullmatch(r"events\.out\.tfevents\.(\d+)\.(.+)", name)
        check("TensorBoard's file name", bool(m) and m.group(2) == socket.gethostname()
              and abs(int(m.group(1)) - start) < 60, name)

        events = []
        for payload in records(files[0]):
            event = pb.Event()
            event.ParseFromString(payload)
            events.append(event)
        check("7 records", len(events) == 7, str(len(events)))
        check("first record is the file version", events[0].file_version == "brain.Event:2", str(events[0]))
        check("wall times now and increasing",
              all(start - 5 < e.wall_time < time.time() + 5 for e in events)
              and all(a.wall_time <= b.wall_time for a, b in zip(events, events[1:])))

        scalars = [(e.step, v.tag, v.simple_value) for e in events if e.HasField("summary")
                   for v in e.summary.value if v.WhichOneof("value") == "simple_value"]
        expected = [(1, "loss/d", 0.75), (1, "loss/g", 2.5), (2, "loss/d", 0.5), (2, "loss/g", 1.25),
                    (2, "perf/images_per_s", 405.5), (1000000, "loss/d", -1.0e-3)]
        check("scalar steps and tags", [s[:2] for s in scalars] == [e[:2] for e in expected], str(scalars))
        check("scalar values (float32)", len(scalars) == len(expected) and all(
            abs(s[2] - e[2]) <= 1e-7 * max(1.0, abs(e[2])) for s, e in zip(scalars, expected)), str(scalars))
        check("three values share step 2's event", len(events[3].summary.value) == 3)

        images = [(e.step, v.tag, v.image) for e in events if e.HasField("summary")
                  for v in e.summary.value if v.WhichOneof("value") == "image"]
        check("two images", [(s, t) for s, t, _ in images] == [(3, "samples/rgb"), (4, "samples/gray")],
              str([(s, t) for s, t, _ in images]))
        for (_, tag, image), (w, h, c) in zip(images, [(7, 5, 3), (4, 3, 1)]):
            check(tag + " size and colorspace", (image.width, image.height, image.colorspace) == (w, h, c),
                  "%d x %d x %d" % (image.width, image.height, image.colorspace))
            png = image.encoded_image_string
            check(tag + " PNG signature", png[:8] == b"\x89PNG\r\n\x1a\n", repr(png[:8]))
            pw, ph, pc, rows = png_pixels(png)
            check(tag + " PNG header", (pw, ph, pc) == (w, h, c), str((pw, ph, pc)))
            want = [bytes((x * 30 + y * 40 + ch * 70) % 256 for x in range(w) for ch in range(c)) for y in range(h)]
            check(tag + " PNG pixels", rows == want, "%s != %s" % (rows[:1], want[:1]))
    finally:
        shutil.rmtree(tmp)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
