// The frame of the async-preempt trampoline (preempt_amd64.S), shared by
// the assembly and the C++ side (runtime/sched/preempt.cc), so that neither
// uses a magic offset. Included by both: plain #defines for the assembler,
// a struct with static_asserts for C++.
//
// The SIGURG handler makes the interrupted thread "call" rt_async_preempt
// (Go's sigctxt.pushCall): it moves the stack pointer below the 128-byte
// red zone of the interrupted code (System V lets a leaf function keep
// data there without moving rsp), stores the interrupted PC there as a
// return address, and points the PC at the trampoline. The trampoline then
// builds, from high to low addresses:
//
//   interrupted rsp ->  ...                      (the interrupted frame)
//                       red zone, 128 bytes      (untouched)
//                       resume PC                RT_PF_PC
//                       rflags                   RT_PF_RFLAGS
//                       r15 ... rax              RT_PF_R15 ... RT_PF_RAX
//   frame pointer   ->  (AsyncPreemptFrame starts here)
//                       padding to 64 bytes
//                       XSAVE area (x87, SSE, AVX, AVX-512, ... as far as
//                       XCR0 enables them; size from CPUID leaf 0xD)
//   rsp at the call ->
//
// and returns with `ret $RT_PF_REDZONE`, which pops the resume PC and
// releases the red-zone gap in one instruction, so every register, the
// flags and rsp are exactly what they were when the signal arrived.
#pragma once

#define RT_PF_REDZONE 128

#define RT_PF_RAX 0
#define RT_PF_RBX 8
#define RT_PF_RCX 16
#define RT_PF_RDX 24
#define RT_PF_RSI 32
#define RT_PF_RDI 40
#define RT_PF_RBP 48
#define RT_PF_R8 56
#define RT_PF_R9 64
#define RT_PF_R10 72
#define RT_PF_R11 80
#define RT_PF_R12 88
#define RT_PF_R13 96
#define RT_PF_R14 104
#define RT_PF_R15 112
#define RT_PF_RFLAGS 120
#define RT_PF_PC 128
#define RT_PF_SIZE 136

// XSAVE needs a 64-byte aligned area; bytes 512..575 are its header, which
// must be zero before the first XSAVE into it (XRSTOR faults on a nonzero
// reserved or XCOMP_BV field, and XSAVE writes only XSTATE_BV).
#define RT_PF_XSAVE_ALIGN 64
#define RT_PF_XSAVE_HEADER 512
#define RT_PF_XSAVE_HEADER_SIZE 64

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>

namespace rt::internal {

// The part of the frame below the red zone that the trampoline writes.
struct AsyncPreemptFrame {
  uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rflags;
  uint64_t pc;  // where the goroutine resumes

  // The stack pointer of the interrupted code.
  uintptr_t interrupted_sp() const { return reinterpret_cast<uintptr_t>(this) + RT_PF_SIZE + RT_PF_REDZONE; }
};

static_assert(offsetof(AsyncPreemptFrame, rax) == RT_PF_RAX);
static_assert(offsetof(AsyncPreemptFrame, rbx) == RT_PF_RBX);
static_assert(offsetof(AsyncPreemptFrame, rcx) == RT_PF_RCX);
static_assert(offsetof(AsyncPreemptFrame, rdx) == RT_PF_RDX);
static_assert(offsetof(AsyncPreemptFrame, rsi) == RT_PF_RSI);
static_assert(offsetof(AsyncPreemptFrame, rdi) == RT_PF_RDI);
static_assert(offsetof(AsyncPreemptFrame, rbp) == RT_PF_RBP);
static_assert(offsetof(AsyncPreemptFrame, r8) == RT_PF_R8);
static_assert(offsetof(AsyncPreemptFrame, r9) == RT_PF_R9);
static_assert(offsetof(AsyncPreemptFrame, r10) == RT_PF_R10);
static_assert(offsetof(AsyncPreemptFrame, r11) == RT_PF_R11);
static_assert(offsetof(AsyncPreemptFrame, r12) == RT_PF_R12);
static_assert(offsetof(AsyncPreemptFrame, r13) == RT_PF_R13);
static_assert(offsetof(AsyncPreemptFrame, r14) == RT_PF_R14);
static_assert(offsetof(AsyncPreemptFrame, r15) == RT_PF_R15);
static_assert(offsetof(AsyncPreemptFrame, rflags) == RT_PF_RFLAGS);
static_assert(offsetof(AsyncPreemptFrame, pc) == RT_PF_PC);
static_assert(sizeof(AsyncPreemptFrame) == RT_PF_SIZE);

}  // namespace rt::internal
#endif
