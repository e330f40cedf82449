// The radix variant of the page-allocator policy: one RadixPageAlloc
// behind the policy functions (runtime/policy/pagealloc.h), with Go 1.14's
// per-P page cache.
#include <new>

#include "runtime/mem/fixalloc.h"
#include "runtime/policy/pagealloc.h"
#include "variants/pagealloc/radix/radix_pagealloc.h"

namespace rt::policy::pagealloc {
namespace {
// Constructed in init() and never destroyed: the heap outlives static
// destructors. Outside the executable's data: the collector scans .data
// and .bss conservatively, and the page addresses the allocator keeps
// (search hints, chunk bases) would keep the heap objects at those
// addresses alive.
internal::RadixPageAlloc* radix = nullptr;
}  // namespace

const char* name() { return "radix"; }
void init() { radix = new (internal::map_metadata(sizeof(internal::RadixPageAlloc))) internal::RadixPageAlloc(); }
void grow(uintptr_t base, size_t npages) { radix->grow(base, npages); }
uintptr_t alloc(size_t npages) { return radix->alloc(npages); }
void free(uintptr_t base, size_t npages) { radix->free(base, npages); }
bool next_free_run(uintptr_t addr, uintptr_t* base, size_t* npages) { return radix->next_free_run(addr, base, npages); }
bool has_page_cache() { return true; }
uintptr_t cache_alloc(PageCache* c, size_t npages) { return internal::RadixPageAlloc::cache_alloc(c, npages); }
void cache_refill(PageCache* c) { radix->cache_refill(c); }
void cache_flush(PageCache* c) { radix->cache_flush(c); }

}  // namespace rt::policy::pagealloc
