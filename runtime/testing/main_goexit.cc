// A program whose main goroutine calls rt::goexit while another goroutine
// still runs: Go keeps the program alive until the others finish, then
// reports "no goroutines (main called runtime.Goexit) - deadlock!".
// Driven by main_goexit_test.sh (gtest cannot host it: its death tests
// catch the unwinding that goexit uses).
#include <cstdio>

#include "rt/rt.h"

int main(int argc, char** argv) {
  return rt::run(argc, argv, []() -> int {
    rt::go([] {
      rt::sys::nanosleep(20'000'000);
      fprintf(stderr, "other goroutine finished\n");
    });
    rt::goexit();
  });
}
