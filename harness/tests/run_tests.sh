#!/usr/bin/env bash
# Runs the rtlab Python tests with Debian's interpreter (the one with
# matplotlib), from the runfiles tree Bazel gives this sh_test. The
# argument, if any, is the file pattern of the tests (default test_*.py).
set -euo pipefail
export MPLCONFIGDIR="${TEST_TMPDIR:-/tmp}/mpl"
export HOME="${HOME:-${TEST_TMPDIR:-/tmp}}"
exec /usr/bin/python3 -m unittest discover -s harness/tests -p "${1:-test_*.py}" -v
