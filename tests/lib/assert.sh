# Assertions for the shell tests. Each prints PASS/FAIL with a name; `finish` prints the summary
# line ctest reads and exits non-zero if anything failed.
passed=0; failed=0

_report() {  # name ok detail
  if [ "$2" = 1 ]; then passed=$((passed + 1)); echo "PASS $1"
  else failed=$((failed + 1)); echo "FAIL $1"; printf '%s\n' "$3" | sed 's/^/    /' | head -n 30; fi
}

# expect_ok NAME REGEX CMD...: exit 0 and output matching REGEX (grep -E).
expect_ok() {
  local name=$1 pattern=$2; shift 2
  local out rc; out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] && { [ -z "$pattern" ] || grep -qE -- "$pattern" <<<"$out"; }; then _report "$name" 1
  else _report "$name" 0 "exit $rc, expected 0 and /$pattern/; output:"$'\n'"$out"; fi
}

# expect_fail CODE NAME TEXT CMD...: exit CODE and output containing TEXT (fixed string).
expect_fail() {
  local code=$1 name=$2 text=$3; shift 3
  local out rc; out=$("$@" 2>&1); rc=$?
  if [ $rc -eq "$code" ] && { [ -z "$text" ] || grep -qF -- "$text" <<<"$out" || grep -qE -- "$text" <<<"$out"; }; then
    _report "$name" 1
  else _report "$name" 0 "exit $rc, expected $code and '$text'; output:"$'\n'"$out"; fi
}

# expect_fail_any NAME TEXT CMD...: any non-zero exit and output containing TEXT.
expect_fail_any() {
  local name=$1 text=$2; shift 2
  local out rc; out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$text" <<<"$out"; then _report "$name" 1
  else _report "$name" 0 "exit $rc, expected non-zero and '$text'; output:"$'\n'"$out"; fi
}

# expect_no_file NAME GLOB-REGEX: no entry of the current directory matches.
expect_no_file() {
  local name=$1 pattern=$2
  local found; found=$(ls -A | grep -E "^${pattern}\$" || true)
  if [ -z "$found" ]; then _report "$name" 1; else _report "$name" 0 "found: $found"; fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# Common start of the shell tests: DISTGAN (the executable, from ctest) made absolute, py = Debian's
# python3 (with h5py), Open MPI allowed as root, and the current directory a temporary one removed
# at exit. Resolve any repository paths before calling it.
enter_test_dir() {
  : "${DISTGAN:?set DISTGAN to the distgan executable}"
  DISTGAN=$(realpath "$DISTGAN")
  py=/usr/bin/python3
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cd "$tmp" || exit 1
}

# prep_fashion_test FILE: the Fashion-MNIST test split as HDF5 (10,000 images): a copy of
# $DISTGAN_TEST_DATA when set (machines without Debian's dataset package), else `distgan prep`.
prep_fashion_test() {
  if [ -n "${DISTGAN_TEST_DATA:-}" ]; then cp "$DISTGAN_TEST_DATA" "$1"
  else "$DISTGAN" prep fashion-mnist --split test --out "$1" >/dev/null; fi
}
