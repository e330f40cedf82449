// main() for runtime tests: the runtime starts once per process, as Go's
// does, and the main goroutine runs the tests, so test bodies may block.
// Death tests use the threadsafe style, which re-executes the binary (and
// with it rt::run) for each death test.
#include <gtest/gtest.h>

#include "rt/rt.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  return rt::run(argc, argv, [] { return RUN_ALL_TESTS(); });
}
