// The treap variant of the page-allocator policy: one TreapPageAlloc
// behind the policy functions (runtime/policy/pagealloc.h). It has no
// per-P page cache: every span allocation takes the heap lock, as in
// Go 1.13.
#include <new>

#include "runtime/mem/fixalloc.h"
#include "runtime/policy/pagealloc.h"
#include "variants/pagealloc/treap/treap_pagealloc.h"

namespace rt::policy::pagealloc {
namespace {
// Constructed in init() and never destroyed: the heap outlives static
// destructors. Outside the executable's data: the collector scans .data
// and .bss conservatively, and the page addresses the allocator keeps
// (search hints, chunk bases) would keep the heap objects at those
// addresses alive.
internal::TreapPageAlloc* treap = nullptr;
}  // namespace

const char* name() { return "treap"; }
void init() { treap = new (internal::map_metadata(sizeof(internal::TreapPageAlloc))) internal::TreapPageAlloc(); }
void grow(uintptr_t base, size_t npages) { treap->grow(base, npages); }
uintptr_t alloc(size_t npages) { return treap->alloc(npages); }
void free(uintptr_t base, size_t npages) { treap->free(base, npages); }
bool next_free_run(uintptr_t addr, uintptr_t* base, size_t* npages) { return treap->next_free_run(addr, base, npages); }
bool has_page_cache() { return false; }
uintptr_t cache_alloc(PageCache*, size_t) { internal::throw_fatal("pagealloc: treap has no page cache"); }
void cache_refill(PageCache*) { internal::throw_fatal("pagealloc: treap has no page cache"); }
void cache_flush(PageCache*) { internal::throw_fatal("pagealloc: treap has no page cache"); }

}  // namespace rt::policy::pagealloc
