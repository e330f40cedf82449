#!/usr/bin/env bash
# Runs main_goexit and checks Go's exit status and message.
set -u
bin="$1"
out="$("$bin" 2>&1)"
rc=$?
fail() { echo "FAIL: $1"; echo "--- output ---"; echo "$out"; exit 1; }
[[ $rc -eq 2 ]] || fail "exit status $rc, want 2"
grep -q "other goroutine finished" <<<"$out" || fail "the other goroutine did not finish"
grep -q "fatal error: no goroutines (main called runtime.Goexit) - deadlock!" <<<"$out" || fail "missing deadlock message"
echo PASS
