// rt::Panic: the exception type of Go's run-time panics.
//
// The runtime throws rt::Panic where Go panics (send on a closed channel,
// unlock of an unlocked mutex, negative WaitGroup counter, ...), and user
// code may throw it too. Catching it is Go's recover(). An exception that
// escapes a goroutine's function is not caught anywhere: the process prints
// "panic: <message>", a goroutine dump, and exits with status 2, with the
// panicking goroutine's frames still intact for a debugger.
#pragma once

#include <stdexcept>
#include <string>

namespace rt {

class Panic : public std::runtime_error {
 public:
  explicit Panic(const std::string& msg) : std::runtime_error(msg) {}
};

}  // namespace rt
