// Helpers shared by the Google Benchmark programs.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

namespace rtlab::bench {

// Registers one run per GOMAXPROCS value: 1 and 2, or the comma-separated
// list in RTLAB_BENCH_PROCS (e.g. "1,2,4,8,16" on a bigger machine).
inline void procs_args(benchmark::internal::Benchmark* b) {
  const char* env = std::getenv("RTLAB_BENCH_PROCS");
  std::string list = env != nullptr && *env != 0 ? env : "1,2";
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    int procs = std::atoi(list.substr(pos, comma - pos).c_str());
    if (procs > 0) b->Arg(procs);
    pos = comma + 1;
  }
}

}  // namespace rtlab::bench
