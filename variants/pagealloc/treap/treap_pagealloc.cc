// Treap page allocator: see treap_pagealloc.h for the algorithm and its
// invariants.
#include "variants/pagealloc/treap/treap_pagealloc.h"

#include "runtime/policy/pagealloc.h"

namespace rt::internal {

using policy::kPageSize;

TreapPageAlloc::~TreapPageAlloc() { free_subtree(root_); }

void TreapPageAlloc::free_subtree(Node* t) {
  if (t == nullptr) return;
  free_subtree(t->left);
  free_subtree(t->right);
  nodes_.free(t);
}

uintptr_t TreapPageAlloc::end_of(const Node* t) { return t->base + t->npages * kPageSize; }

void TreapPageAlloc::update(Node* t) {
  size_t m = t->npages;
  if (t->left != nullptr && t->left->max_pages > m) m = t->left->max_pages;
  if (t->right != nullptr && t->right->max_pages > m) m = t->right->max_pages;
  t->max_pages = m;
}

void TreapPageAlloc::update_upwards(Node* t) {
  for (; t != nullptr; t = t->parent) update(t);
}

void TreapPageAlloc::replace_child(Node* parent, Node* old_child, Node* new_child) {
  if (new_child != nullptr) new_child->parent = parent;
  if (parent == nullptr) {
    root_ = new_child;
  } else if (parent->left == old_child) {
    parent->left = new_child;
  } else {
    parent->right = new_child;
  }
}

// Turns (x a (y b c)) into (y (x a b) c).
void TreapPageAlloc::rotate_left(Node* x) {
  Node* y = x->right;
  replace_child(x->parent, x, y);
  x->right = y->left;
  if (x->right != nullptr) x->right->parent = x;
  y->left = x;
  x->parent = y;
  update(x);
  update(y);
}

// Turns (x (y a b) c) into (y a (x b c)): the mirror image.
void TreapPageAlloc::rotate_right(Node* x) {
  Node* y = x->left;
  replace_child(x->parent, x, y);
  x->left = y->right;
  if (x->left != nullptr) x->left->parent = x;
  y->right = x;
  x->parent = y;
  update(x);
  update(y);
}

void TreapPageAlloc::insert(uintptr_t base, size_t npages) {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  Node* n = nodes_.alloc();
  *n = Node{base, npages, npages, uint32_t(rng_ >> 32), nullptr, nullptr, nullptr};
  Node* parent = nullptr;
  for (Node* t = root_; t != nullptr; t = base < t->base ? t->left : t->right) parent = t;
  n->parent = parent;
  if (parent == nullptr) {
    root_ = n;
  } else if (base < parent->base) {
    parent->left = n;
  } else {
    parent->right = n;
  }
  update_upwards(parent);
  while (n->parent != nullptr && n->parent->priority < n->priority) {
    if (n->parent->left == n) {
      rotate_right(n->parent);
    } else {
      rotate_left(n->parent);
    }
  }
  update_upwards(n->parent);
}

void TreapPageAlloc::erase(Node* t) {
  // Rotate t down until it is a leaf, keeping the heap order, then cut it.
  while (t->left != nullptr || t->right != nullptr) {
    if (t->right == nullptr || (t->left != nullptr && t->left->priority > t->right->priority)) {
      rotate_right(t);
    } else {
      rotate_left(t);
    }
  }
  Node* parent = t->parent;
  replace_child(parent, t, nullptr);
  update_upwards(parent);
  nodes_.free(t);
}

uintptr_t TreapPageAlloc::alloc(size_t npages) {
  if (npages == 0) throw_fatal("pagealloc: allocation of zero pages");
  if (root_ == nullptr || root_->max_pages < npages) return 0;
  Node* t = root_;
  for (;;) {
    if (t->left != nullptr && t->left->max_pages >= npages) {
      t = t->left;
    } else if (t->npages >= npages) {
      break;
    } else {
      t = t->right;
      if (t == nullptr || t->max_pages < npages) throw_fatal("pagealloc: treap max_pages is inconsistent");
    }
  }
  uintptr_t base = t->base;
  if (t->npages == npages) {
    erase(t);
  } else {
    t->base += npages * kPageSize;
    t->npages -= npages;
    update_upwards(t);
  }
  return base;
}

void TreapPageAlloc::free(uintptr_t base, size_t npages) {
  if (npages == 0) throw_fatal("pagealloc: free of zero pages");
  uintptr_t end = base + npages * kPageSize;
  Node* pred = nullptr;
  Node* succ = nullptr;
  for (Node* t = root_; t != nullptr;) {
    if (t->base < base) {
      pred = t;
      t = t->right;
    } else {
      succ = t;
      t = t->left;
    }
  }
  if ((pred != nullptr && end_of(pred) > base) || (succ != nullptr && succ->base < end)) {
    throw_fatal("pagealloc: free of pages that are already free");
  }
  bool join_pred = pred != nullptr && end_of(pred) == base;
  bool join_succ = succ != nullptr && succ->base == end;
  if (join_pred && join_succ) {
    size_t succ_pages = succ->npages;
    erase(succ);
    pred->npages += npages + succ_pages;
    update_upwards(pred);
  } else if (join_pred) {
    pred->npages += npages;
    update_upwards(pred);
  } else if (join_succ) {
    succ->base = base;
    succ->npages += npages;
    update_upwards(succ);
  } else {
    insert(base, npages);
  }
}

bool TreapPageAlloc::next_free_run(uintptr_t addr, uintptr_t* base, size_t* npages) const {
  const Node* best = nullptr;
  for (const Node* t = root_; t != nullptr;) {
    if (end_of(t) > addr) {
      best = t;
      t = t->left;
    } else {
      t = t->right;
    }
  }
  if (best == nullptr) return false;
  uintptr_t b = best->base > addr ? best->base : addr;
  *base = b;
  *npages = (end_of(best) - b) / kPageSize;
  return true;
}

namespace {
template <class NodeT, class F>
void in_order(const NodeT* t, F&& f) {
  if (t == nullptr) return;
  in_order(t->left, f);
  f(t);
  in_order(t->right, f);
}
}  // namespace

size_t TreapPageAlloc::free_pages() const {
  size_t n = 0;
  in_order(root_, [&](const Node* t) { n += t->npages; });
  return n;
}

size_t TreapPageAlloc::runs() const {
  size_t n = 0;
  in_order(root_, [&](const Node*) { n++; });
  return n;
}

size_t TreapPageAlloc::check_subtree(const Node* t, const Node* parent, uintptr_t lo, uintptr_t hi) const {
  if (t == nullptr) return 0;
  if (t->parent != parent) throw_fatal("pagealloc: treap parent pointer is wrong");
  if (t->npages == 0) throw_fatal("pagealloc: treap node of zero pages");
  if (t->base < lo || end_of(t) > hi) throw_fatal("pagealloc: treap is out of address order");
  if (parent != nullptr && t->priority > parent->priority) throw_fatal("pagealloc: treap heap order is broken");
  // Strict bounds exclude touching neighbours: they would have been merged.
  size_t lmax = check_subtree(t->left, t, lo, t->base - 1);
  size_t rmax = check_subtree(t->right, t, end_of(t) + 1, hi);
  size_t m = t->npages;
  if (lmax > m) m = lmax;
  if (rmax > m) m = rmax;
  if (t->max_pages != m) throw_fatal("pagealloc: treap max_pages is wrong");
  return m;
}

void TreapPageAlloc::check() const { check_subtree(root_, nullptr, 0, ~uintptr_t(0)); }

}  // namespace rt::internal
