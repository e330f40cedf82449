// Memory statistics and control of the runtime's heap (Go's
// runtime.MemStats, debug.FreeOSMemory, debug.SetMemoryLimit).
//
// Byte counts follow Go's definitions:
//   Sys = HeapSys + StackSys + MSpanSys + MCacheSys + OtherSys: memory
//     obtained from the OS (virtual address space mapped for the heap and
//     runtime metadata);
//   HeapSys = HeapInuse + HeapIdle: arena memory not used for stacks;
//   HeapInuse: bytes in spans holding heap objects;
//   HeapIdle: bytes in free pages, of which HeapReleased were returned to
//     the OS (they cost no physical memory until reused);
//   HeapObjects = Mallocs - Frees counted in blocks (tiny allocations
//     sharing a 16-byte block count in Mallocs and Frees, as in Go);
//   StackInuse = StackSys: bytes in spans holding goroutine stacks;
//   MSpanInuse/MSpanSys, MCacheInuse/MCacheSys: span and mcache metadata;
//   OtherSys: other heap metadata (arena records and the arena map).
// Garbage collector fields (Go's meanings; the GC is in rt/gc.h):
//   HeapAlloc: bytes of allocated heap objects, reachable or not yet
//     swept (TotalAlloc minus the bytes the sweeper freed);
//   TotalAlloc: cumulative bytes allocated (never decreases);
//   NextGC: the heap goal of the next collection (HeapAlloc that triggers
//     it); 0 when GOGC=off;
//   LastGC: end of the last collection, in nanoseconds since 1970 (0 if
//     none yet);
//   NumGC, NumForcedGC: completed collections, and those rt::gc() forced;
//   PauseTotalNs: total stop-the-world pause of all collections;
//   PauseNs[(NumGC+255)%256]: the pause of the most recent collection
//     (a ring of the last 256), PauseEnd the same ring of their end times
//     (nanoseconds since 1970);
//   GCCPUFraction: CPU time the GC used since the program started, as a
//     fraction of the CPU time available to it (GOMAXPROCS x elapsed); a
//     stop-the-world pause counts as GOMAXPROCS x its length.
#pragma once

#include <cstdint>

namespace rt {

struct MemStats {
  uint64_t Sys;
  uint64_t HeapSys;
  uint64_t HeapInuse;
  uint64_t HeapIdle;
  uint64_t HeapReleased;
  uint64_t HeapObjects;
  uint64_t Mallocs;
  uint64_t Frees;
  uint64_t StackInuse;
  uint64_t StackSys;
  uint64_t MSpanInuse;
  uint64_t MSpanSys;
  uint64_t MCacheInuse;
  uint64_t MCacheSys;
  uint64_t OtherSys;
  uint64_t HeapAlloc;
  uint64_t TotalAlloc;
  uint64_t NextGC;
  uint64_t LastGC;
  uint32_t NumGC;
  uint32_t NumForcedGC;
  uint64_t PauseTotalNs;
  uint64_t PauseNs[256];
  uint64_t PauseEnd[256];
  double GCCPUFraction;
};

// A snapshot of the heap's statistics. Counters of other Ps are read
// without stopping them, so under concurrent allocation the fields are
// each exact but not mutually consistent.
MemStats read_mem_stats();

// Returns as much free heap memory to the OS as possible, now.
void free_os_memory();

// Sets the soft memory limit in bytes (GOMEMLIMIT): before the heap grows
// past it, free memory is returned to the OS, and the collector's heap
// goal is capped at the limit less the memory that is not heap (Go 1.19's
// rules, GOGC off or not; rt/gc.h). Returns the previous limit; a
// negative value only queries.
int64_t set_memory_limit(int64_t bytes);

}  // namespace rt
