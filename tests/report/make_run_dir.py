#!/usr/bin/python3
"""Writes a fake run directory for report_test.sh: metrics.jsonl (6 metrics lines, one line of
garbage at line 4, loss_g missing on one line), eval.jsonl, PNG samples of known sizes, config.yaml,
run_info.json and a checkpoint, with text that must come out HTML-escaped."""
import json, os, struct, sys, zlib

run = sys.argv[1]
os.makedirs(os.path.join(run, "samples"))
os.makedirs(os.path.join(run, "checkpoints"))

with open(os.path.join(run, "metrics.jsonl"), "w") as f:
    for i in range(6):
        line = {"step": 10 * (i + 1), "epoch": i // 3, "loss_d": 0.7 - 0.05 * i, "loss_g": 2.0 + 0.1 * i,
                "d_real": 0.8, "d_fake": 0.3 + 0.01 * i, "images_per_s": 100.0 * (i + 1), "elapsed_s": 61.0 * (i + 1),
                "eta_s": 0.0, "grad_norm_d": 17.0 + i, "grad_norm_g": 24.0 - i, "skipped": 1 if i == 2 else 0,
                "time_share": {"comm": 0.02, "compute": 0.97, "data": 0.01}}
        if i == 4:
            line["loss_g"] = None  # a non-finite loss is logged as null
        if i == 3:
            f.write('{"step": 35, "loss_d": 0.5\n')  # line 4: a line cut short (a killed run)
        f.write(json.dumps(line) + "\n")

with open(os.path.join(run, "eval.jsonl"), "w") as f:
    for step, ema, fid, kid in [(20, True, 30.0, 0.03), (40, True, 25.0, 0.02), (40, False, 27.0, 0.025)]:
        f.write(json.dumps({"step": step, "ema": ema, "metrics": {"fid": fid, "kid": kid}}) + "\n")


def png(path, width, height):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\0" + bytes((x * 40 + y * 60) % 256 for x in range(width)) for y in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# Written out of order; the page shows them by step, the class grid after its step's grid, final last.
for name, width in [("final.png", 9), ("step_0000040_classes.png", 8), ("step_0000040.png", 7),
                    ("step_0000020.png", 6)]:
    png(os.path.join(run, "samples", name), width, 4)
open(os.path.join(run, "samples", "notes.txt"), "w").write("not an image")

with open(os.path.join(run, "config.yaml"), "w") as f:
    f.write("model:\n  name: dcgan  # <script>alert(1)</script> & more\ntraining:\n  steps: 60\n")
with open(os.path.join(run, "run_info.json"), "w") as f:
    json.dump({"distgan_version": "0.1.0", "world_size": 2, "hosts": ["a", "b"], "note": "<b>x</b>"}, f)
with open(os.path.join(run, "checkpoints", "ckpt_00000040.h5"), "wb") as f:
    f.truncate(1500000)
