// A small JSON value (tree) and serialiser for the per-run records.
// Objects keep insertion order; non-finite doubles serialise as null.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace harness {

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() : v_(nullptr) {}
  Json(std::nullptr_t) : v_(nullptr) {}
  Json(bool b) : v_(b) {}
  Json(int v) : v_(int64_t(v)) {}
  Json(long v) : v_(int64_t(v)) {}
  Json(long long v) : v_(int64_t(v)) {}
  Json(unsigned v) : v_(int64_t(v)) {}
  Json(unsigned long v) : v_(uint64_t(v)) {}
  Json(unsigned long long v) : v_(uint64_t(v)) {}
  Json(double d) : v_(d) {}
  Json(const char* s) : v_(std::string(s)) {}
  Json(std::string s) : v_(std::move(s)) {}
  Json(Array a) : v_(std::move(a)) {}
  Json(Object o) : v_(std::move(o)) {}

  static Json object() { return Json(Object{}); }
  static Json array() { return Json(Array{}); }

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(v_); }
  bool is_object() const { return std::holds_alternative<Object>(v_); }

  // Object: sets (replacing) key. Array: appends.
  Json& set(const std::string& key, Json value);
  Json& push(Json value);
  // Object lookup; nullptr if absent.
  const Json* get(const std::string& key) const;
  Json* get(const std::string& key);

  std::string dump() const;
  void dump_to(std::string* out) const;

 private:
  std::variant<std::nullptr_t, bool, int64_t, uint64_t, double, std::string, Array, Object> v_;
};

std::string json_escape(const std::string& s);

}  // namespace harness
