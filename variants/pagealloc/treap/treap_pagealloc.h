// Treap page allocator (Go 1.13's mgclarge.go, free spans only).
//
// Every maximal run of free pages is one node of a treap keyed by its base
// address: a binary search tree in address order that is also a max-heap
// on random priorities, so its expected depth is O(log n). Each node also
// carries max_pages, the largest run in its subtree, which turns
// address-ordered first fit into one descent from the root: go left while
// the left subtree has a large enough run, else take this node if it is
// large enough, else go right.
//
// Invariants (check() verifies them all; the differential test calls it):
//   - in-order traversal yields runs in increasing address order, and no
//     two runs touch or overlap (touching runs are always coalesced);
//   - every node's priority is <= its parent's;
//   - max_pages = max(npages, left->max_pages, right->max_pages);
//   - parent pointers match the child pointers.
// Allocation splits the run it takes from (the remainder keeps its node, at
// a higher base, which keeps the order); free merges the new run with its
// predecessor and successor when they touch. Nodes come from a FixAlloc.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/mem/fixalloc.h"

namespace rt::internal {

class TreapPageAlloc {
 public:
  TreapPageAlloc() = default;
  TreapPageAlloc(const TreapPageAlloc&) = delete;
  TreapPageAlloc& operator=(const TreapPageAlloc&) = delete;
  ~TreapPageAlloc();

  void grow(uintptr_t base, size_t npages) { free(base, npages); }
  uintptr_t alloc(size_t npages);
  void free(uintptr_t base, size_t npages);
  bool next_free_run(uintptr_t addr, uintptr_t* base, size_t* npages) const;

  // Total free pages and number of runs (walks the tree; for tests).
  size_t free_pages() const;
  size_t runs() const;
  // Verifies every invariant above; throw_fatal on the first violation.
  void check() const;

 private:
  struct Node {
    uintptr_t base;
    size_t npages;
    size_t max_pages;
    uint32_t priority;
    Node* left;
    Node* right;
    Node* parent;
  };

  static uintptr_t end_of(const Node* t);
  static void update(Node* t);
  static void update_upwards(Node* t);
  void replace_child(Node* parent, Node* old_child, Node* new_child);
  void rotate_left(Node* x);
  void rotate_right(Node* x);
  void insert(uintptr_t base, size_t npages);
  void erase(Node* t);
  size_t check_subtree(const Node* t, const Node* parent, uintptr_t lo, uintptr_t hi) const;
  void free_subtree(Node* t);

  Node* root_ = nullptr;
  uint64_t rng_ = 0x9e3779b97f4a7c15ULL;
  FixAlloc<Node> nodes_;
};

}  // namespace rt::internal
