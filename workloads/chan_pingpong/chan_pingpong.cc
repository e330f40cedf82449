// Workload "chan_pingpong": `pairs` pairs of goroutines bounce a counter
// over two channels, `round_trips` times per pair. The channels are
// unbuffered, or have capacity 1 with buffered=1. Reports wall-clock ns per
// round trip (over all pairs; with one pair this is the latency of a
// round trip) and a histogram of every `sample_every`-th round trip timed
// individually (timing each one would add two clock reads to every trip).
// GOMAXPROCS comes from the environment. Twin: go/main.go.
#include <cstdint>
#include <vector>

#include "harness/histogram.h"
#include "harness/timer.h"
#include "harness/workload.h"
#include "rt/rt.h"

int main(int argc, char** argv) {
  harness::Workload w("chan_pingpong", argc, argv);
  const int64_t trips = w.param_int("round_trips", 1000000);
  const int64_t pairs = w.param_int("pairs", 1);
  const int64_t cap = w.param_int("buffered", 0) != 0 ? 1 : 0;
  const int64_t sample_every = w.param_int("sample_every", 16);
  w.check_params();
  return rt::run(argc, argv, [&] {
    std::vector<harness::Histogram> hists(size_t(pairs), harness::Histogram(1, 10LL * 1000000000, 3));
    rt::WaitGroup wg;
    wg.add(int(2 * pairs));
    w.begin();
    for (int64_t p = 0; p < pairs; p++) {
      auto ping = rt::make_chan<int64_t>(cap);
      auto pong = rt::make_chan<int64_t>(cap);
      rt::go([=, &wg] {
        for (int64_t i = 0; i < trips; i++) pong.send(ping.recv() + 1);
        wg.done();
      });
      harness::Histogram* h = &hists[size_t(p)];
      rt::go([=, &wg] {
        int64_t v = 0;
        for (int64_t i = 0; i < trips; i++) {
          if (i % sample_every == 0) {
            int64_t t = harness::now_ns();
            ping.send(v);
            v = pong.recv();
            h->record(harness::now_ns() - t);
          } else {
            ping.send(v);
            v = pong.recv();
          }
        }
        if (v != trips) throw rt::Panic("chan_pingpong: lost a value");
        wg.done();
      });
    }
    wg.wait();
    w.end(uint64_t(trips * pairs));
    w.metric("ns_per_round_trip", double(w.wall_ns()) / double(trips * pairs));
    harness::Histogram all = hists[0];
    for (size_t i = 1; i < hists.size(); i++) all.merge(hists[i]);
    w.histogram("round_trip_ns", all);
    return w.emit();
  });
}
