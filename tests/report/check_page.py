#!/usr/bin/python3
"""Checks the DOM Chromium dumped of the report of make_run_dir.py's run (usage: check_page.py DOM RUN_DIR
[PROBE_DOM]); PROBE_DOM is the dump of the page with a probe script that records what the browser
decoded and laid out. Prints PASS/FAIL lines; exit 1 on any failure."""
import base64, html.parser, json, os, sys

failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)[:2000]))
    if not ok:
        failures.append(name)


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements, self.stack, self.texts = [], [], {}

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in ("img", "br", "meta", "line", "rect", "circle"):
            self.stack.append(tag)
            self.texts.setdefault(tag, []).append("")  # one string per element

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        for tag in set(self.stack):
            self.texts[tag][-1] += data

    @property
    def text(self):  # all the text inside elements of each tag
        return {tag: "".join(texts) for tag, texts in self.texts.items()}


def parse(path):
    page = Page()
    page.feed(open(path, encoding="utf-8").read())
    return page


dom, run = parse(sys.argv[1]), sys.argv[2]
tags = [t for t, _ in dom.elements]
title = dom.texts.get("title", [""])[0]  # the page's (the charts' <title>s follow)
check("title names the run", title == "distgan report: run", title)
check("no script, no external resource", "script" not in tags and not any(
    v.startswith(("http:", "https:", "//")) for t, a in dom.elements for k, v in a.items() if k in ("src", "href")))

# Charts: one polyline per series, one point per finite value, inside the 560 x 300 view.
lines = {a["data-name"]: [tuple(map(float, p.split(","))) for p in a["points"].split()]
         for t, a in dom.elements if t == "polyline"}
expected = {"loss_d": 6, "loss_g": 5, "d_real": 6, "d_fake": 6, "images_per_s": 6, "time_share.data": 6,
            "time_share.compute": 6, "time_share.comm": 6, "grad_norm_d": 6, "grad_norm_g": 6,
            "fid (EMA)": 2, "fid": 1, "kid (EMA)": 2, "kid": 1}
check("one polyline per series", sorted(lines) == sorted(expected), sorted(lines))
check("points per series", {k: len(v) for k, v in lines.items()} == expected, {k: len(v) for k, v in lines.items()})
check("points inside the chart", all(0 <= x <= 560 and 0 <= y <= 300 for v in lines.values() for x, y in v))
check("steps increase left to right", all(a[0] < b[0] for v in lines.values() for a, b in zip(v, v[1:])))
ld = lines.get("loss_d", [])
check("falling loss_d is drawn falling (SVG y grows downwards)", all(a[1] < b[1] for a, b in zip(ld, ld[1:])), ld)
svg_titles = [a.get("aria-label") for t, a in dom.elements if t == "svg"]
check("charts", svg_titles == ["Losses", "Discriminator outputs", "Throughput (images/s)", "Share of wall time",
                               "Gradient norms", "Evaluation: fid", "Evaluation: kid"], svg_titles)

# Samples: embedded, in step order, final last, the bytes of the files.
images = [a for t, a in dom.elements if t == "img"]
names = ["step_0000020.png", "step_0000040.png", "step_0000040_classes.png", "final.png"]
check("samples in order", [a.get("alt") for a in images] == names, [a.get("alt") for a in images])
check("samples embedded as the files' bytes", len(images) == 4 and all(
    a["src"] == "data:image/png;base64," + base64.b64encode(open(os.path.join(run, "samples", n), "rb").read()).decode()
    for a, n in zip(images, names)))
captions = dom.text.get("figcaption", "")
check("captions with steps", "step_0000040.png (step 40)" in captions and "final.png" in captions, captions)

# Text from files shown as text.
pre = dom.text.get("pre", "")
check("config shown, escaped", "name: dcgan  # <script>alert(1)</script> & more" in pre and "steps: 60" in pre, pre)
cells = dom.text.get("td", "")
check("run_info rows", all(s in cells for s in ["0.1.0", "a, b", "<b>x</b>"]) and "b" not in tags, cells)
check("checkpoint listed with size", "1.5 MB" in cells and "checkpoints/ckpt_00000040.h5" in dom.text.get("th", ""))
check("summary", all(s in cells for s in ["60 (6 metrics lines)", "loss_D 0.4500", "350.0", "0:06:06"]), cells)
check("skipped line reported on the page", "metrics.jsonl:4: not valid JSON; skipped" in dom.text.get("li", ""))

if len(sys.argv) > 3:  # what the browser made of it
    probe = parse(sys.argv[3])
    data = json.loads(next(a["data-probe"] for t, a in probe.elements if t == "body" and "data-probe" in a))
    check("browser decoded every image at its size", data["images"] == [6, 7, 8, 9], data["images"])
    check("browser laid out every polyline", len(data["lines"]) == 14 and all(w > 0 or n == 1 for w, n in data["lines"]),
          data["lines"])
sys.exit(1 if failures else 0)
