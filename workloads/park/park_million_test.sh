#!/usr/bin/env bash
# Runs the park workload with a million goroutines and checks that it
# succeeded (park itself verifies exactly-once delivery) and reported for all
# of them; prints its record, which carries the resident bytes per parked
# goroutine.
set -u
bin="$1"
out="$("$bin" --goroutines=1000000 2>&1)"
rc=$?
fail() { echo "FAIL: $1"; echo "--- output ---"; echo "$out"; exit 1; }
[[ $rc -eq 0 ]] || fail "exit status $rc"
grep -q '"ops": *1000000[,}]' <<<"$out" || fail "the record does not count 1000000 goroutines"
grep -q '"rss_bytes_per_goroutine"' <<<"$out" || fail "no rss_bytes_per_goroutine in the record"
echo "$out"
echo PASS
