#include "harness/json.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace harness {

Json& Json::set(const std::string& key, Json value) {
  auto* o = std::get_if<Object>(&v_);
  if (o == nullptr) throw std::logic_error("Json::set on a non-object");
  for (auto& kv : *o) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return kv.second;
    }
  }
  o->emplace_back(key, std::move(value));
  return o->back().second;
}

Json& Json::push(Json value) {
  auto* a = std::get_if<Array>(&v_);
  if (a == nullptr) throw std::logic_error("Json::push on a non-array");
  a->push_back(std::move(value));
  return a->back();
}

const Json* Json::get(const std::string& key) const {
  const auto* o = std::get_if<Object>(&v_);
  if (o == nullptr) return nullptr;
  for (const auto& kv : *o)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

Json* Json::get(const std::string& key) { return const_cast<Json*>(static_cast<const Json*>(this)->get(key)); }

std::string json_escape(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
  return out;
}

void Json::dump_to(std::string* out) const {
  struct Visitor {
    std::string* out;
    void operator()(std::nullptr_t) const { *out += "null"; }
    void operator()(bool b) const { *out += b ? "true" : "false"; }
    void operator()(int64_t v) const { *out += std::to_string(v); }
    void operator()(uint64_t v) const { *out += std::to_string(v); }
    void operator()(double d) const {
      if (!std::isfinite(d)) {
        *out += "null";
        return;
      }
      char buf[32];
      snprintf(buf, sizeof buf, "%.17g", d);
      *out += buf;
    }
    void operator()(const std::string& s) const { *out += json_escape(s); }
    void operator()(const Array& a) const {
      *out += '[';
      for (size_t i = 0; i < a.size(); i++) {
        if (i) *out += ',';
        a[i].dump_to(out);
      }
      *out += ']';
    }
    void operator()(const Object& o) const {
      *out += '{';
      for (size_t i = 0; i < o.size(); i++) {
        if (i) *out += ',';
        *out += json_escape(o[i].first);
        *out += ':';
        o[i].second.dump_to(out);
      }
      *out += '}';
    }
  };
  std::visit(Visitor{out}, v_);
}

std::string Json::dump() const {
  std::string s;
  dump_to(&s);
  return s;
}

}  // namespace harness
