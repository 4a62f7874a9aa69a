#!/usr/bin/env bash
# cluster/install-deps.sh: idempotent (nothing to do once installed), --dry-run lists what is
# missing without installing, and a non-root user with packages missing gets a clear error.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
script=$here/../../cluster/install-deps.sh

expect_ok "second run has nothing to do" "all [0-9]+ packages already installed" bash "$script"
expect_ok "dry run lists a missing package" "missing: distgan-no-such-package" \
  env DISTGAN_EXTRA_PACKAGES=distgan-no-such-package bash "$script" --dry-run
expect_fail 2 "unknown option" "unknown option '--bogus'" bash "$script" --bogus
expect_ok "help" "--with-slurm" bash "$script" --help
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  # A copy that user nobody can read wherever the checkout lives.
  copy=$(mktemp /tmp/install-deps.XXXXXX.sh); trap 'rm -f "$copy"' EXIT
  cp "$script" "$copy"; chmod 755 "$copy"
  expect_fail 1 "not root and packages missing" "this is not root" \
    env DISTGAN_EXTRA_PACKAGES=distgan-no-such-package \
    setpriv --reuid=nobody --regid=nogroup --clear-groups bash "$copy"
fi
finish
