#!/usr/bin/env bash
# `distgan report`: builds a fake run directory (make_run_dir.py), writes its page, and renders it
# in headless Chromium: no console message, no script (so it reads the same with scripts off; a
# page with scripts off cannot be dumped), charts with one point per metrics line, samples in
# order, text from files escaped (check_page.py). A copy with a probe script shows
# the browser decoded every image and laid out every line. Also the error cases. Exit 77
# (skipped) without Chromium, after the checks that need none.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
enter_test_dir

$py "$here/make_run_dir.py" run
expect_ok "report of a run" "^wrote run/report.html \([0-9.]+ kB\)" "$DISTGAN" report run
expect_ok "a skipped line is named" "warning: .*/run/metrics.jsonl:4: not valid JSON; skipped" "$DISTGAN" report run
expect_ok "--out" "wrote other.html" "$DISTGAN" report run --out other.html
expect_ok "the same page either way" "" cmp run/report.html other.html
expect_fail 2 "missing run directory" "nope" "$DISTGAN" report nope
mkdir empty
expect_fail 1 "no metrics.jsonl" "distgan: error: $tmp/empty/metrics.jsonl: not found" "$DISTGAN" report empty
if [ -z "$(ls -A empty)" ]; then _report "nothing written for a failed report" 1
else _report "nothing written for a failed report" 0 "$(ls -A empty)"; fi

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "SKIP: no Chromium at $chromium (apt-get install chromium) for the rendering checks"
  [ "$failed" -eq 0 ] && exit 77
  finish
fi

# render NAME URL ARGS...: dumps the DOM to NAME.dom and Chromium's log to NAME.log. Chromium runs
# in its own session, killed whole at the end, so no process outlives the test.
export HOME=$tmp/home
render() {
  local name=$1 url=$2; shift 2
  setsid "$chromium" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$tmp/profile-$name" \
    --enable-logging=stderr --v=0 "$@" --dump-dom "$url" >"$name.dom" 2>"$name.log" &
  local pid=$! waited=0
  while kill -0 "$pid" 2>/dev/null && [ $waited -lt 250 ]; do sleep 0.1; waited=$((waited + 1)); done
  if [ $waited -ge 250 ]; then _report "$name: Chromium finished within 25 s" 0 "$(tail -n 5 "$name.log")"; fi
  pkill -KILL -s "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  sleep 0.2
  local left; left=$(ps -e -o sid=,stat=,pid=,args= | awk -v s="$pid" '$1 == s && $2 !~ /^Z/')
  if [ -n "$left" ]; then _report "$name: no Chromium process left" 0 "$left"; pkill -KILL -s "$pid"; fi
}

render page "file://$tmp/run/report.html"
console=$(grep -E 'CONSOLE|Uncaught' page.log)
if [ -s page.dom ] && [ -z "$console" ]; then _report "Chromium renders the page without console messages" 1
else _report "Chromium renders the page without console messages" 0 "$console"$'\n'"$(tail -n 5 page.log)"; fi

# The probe: the same page and a script that records, after load, each image's decoded width and
# each polyline's laid-out width; then an error on purpose, to prove console errors reach the log.
sed 's|</body>|<script>addEventListener("load", () => { document.body.dataset.probe = JSON.stringify({images: [...document.images].map(i => i.naturalWidth), lines: [...document.querySelectorAll("polyline")].map(p => [p.getBBox().width, p.points.numberOfItems])}); undefinedFunction(); });</script></body>|' \
  run/report.html >probe.html
render probe "file://$tmp/probe.html" --virtual-time-budget=3000
if grep -q 'Uncaught ReferenceError: undefinedFunction' probe.log; then _report "console errors are caught in the log" 1
else _report "console errors are caught in the log" 0 "$(tail -n 5 probe.log)"; fi

if $py "$here/check_page.py" page.dom run probe.dom; then _report "page content (check_page.py)" 1
else _report "page content (check_page.py)" 0 "the FAIL lines above"; fi
finish
