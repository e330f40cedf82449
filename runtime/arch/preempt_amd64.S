// The async-preempt trampoline (Go's asyncPreempt in preempt_amd64.s).
//
// The SIGURG handler (runtime/sched/preempt.cc) enters it by rewriting the
// signal context of a goroutine stopped at an async-safe point, as if the
// interrupted instruction had called it (frame layout and offsets:
// preempt_frame.h). It saves everything the interrupted code may have live:
// the 15 general registers besides rsp, the flags, and with XSAVE the
// x87/SSE/AVX/AVX-512 state in the components rt_xsave_mask selects (what
// CPUID and XCR0 report, set once at start-up together with rt_xsave_size).
// errno and the C++ exception globals are thread state, not registers:
// rt_async_preempt2 gives the goroutine up through mcall, which carries
// them across threads as for any switch. When the goroutine is scheduled
// again, possibly on another thread, rt_async_preempt2 returns here and
// everything is restored in reverse.
#include "runtime/arch/preempt_frame.h"

        .section .text.rt_arch_preempt,"ax",@progbits

        .globl  rt_async_preempt
        .type   rt_async_preempt, @function
        .p2align 4
rt_async_preempt:
        .cfi_startproc
        // The "caller" is an interrupted instruction, not a call: unwinders
        // must use the return address as is (no -1 adjustment).
        .cfi_signal_frame
        // On entry: (%rsp) = resume PC, then the red zone, then the
        // interrupted stack pointer (= CFA).
        .cfi_def_cfa %rsp, RT_PF_REDZONE + 8
        .cfi_offset %rip, -(RT_PF_REDZONE + 8)
        pushfq
        .cfi_adjust_cfa_offset 8
        subq    $RT_PF_RFLAGS, %rsp
        .cfi_adjust_cfa_offset RT_PF_RFLAGS
        movq    %rax, RT_PF_RAX(%rsp)
        movq    %rbx, RT_PF_RBX(%rsp)
        movq    %rcx, RT_PF_RCX(%rsp)
        movq    %rdx, RT_PF_RDX(%rsp)
        movq    %rsi, RT_PF_RSI(%rsp)
        movq    %rdi, RT_PF_RDI(%rsp)
        movq    %rbp, RT_PF_RBP(%rsp)
        movq    %r8, RT_PF_R8(%rsp)
        movq    %r9, RT_PF_R9(%rsp)
        movq    %r10, RT_PF_R10(%rsp)
        movq    %r11, RT_PF_R11(%rsp)
        movq    %r12, RT_PF_R12(%rsp)
        movq    %r13, RT_PF_R13(%rsp)
        movq    %r14, RT_PF_R14(%rsp)
        movq    %r15, RT_PF_R15(%rsp)
        .cfi_rel_offset %rbx, RT_PF_RBX
        .cfi_rel_offset %rbp, RT_PF_RBP
        .cfi_rel_offset %r12, RT_PF_R12
        .cfi_rel_offset %r13, RT_PF_R13
        .cfi_rel_offset %r14, RT_PF_R14
        .cfi_rel_offset %r15, RT_PF_R15
        // rbx (callee-saved) holds the frame from here on.
        movq    %rsp, %rbx
        .cfi_def_cfa_register %rbx
        subq    rt_xsave_size(%rip), %rsp
        andq    $-RT_PF_XSAVE_ALIGN, %rsp
        xorl    %eax, %eax
        movq    %rax, RT_PF_XSAVE_HEADER + 0(%rsp)
        movq    %rax, RT_PF_XSAVE_HEADER + 8(%rsp)
        movq    %rax, RT_PF_XSAVE_HEADER + 16(%rsp)
        movq    %rax, RT_PF_XSAVE_HEADER + 24(%rsp)
        movq    %rax, RT_PF_XSAVE_HEADER + 32(%rsp)
        movq    %rax, RT_PF_XSAVE_HEADER + 40(%rsp)
        movq    %rax, RT_PF_XSAVE_HEADER + 48(%rsp)
        movq    %rax, RT_PF_XSAVE_HEADER + 56(%rsp)
        movl    rt_xsave_mask(%rip), %eax
        movl    rt_xsave_mask + 4(%rip), %edx
        xsave64 (%rsp)
        // The ABI wants the direction flag clear at a call (saved above).
        cld
        movq    %rbx, %rdi
        call    rt_async_preempt2
        movl    rt_xsave_mask(%rip), %eax
        movl    rt_xsave_mask + 4(%rip), %edx
        xrstor64 (%rsp)
        movq    %rbx, %rsp
        .cfi_def_cfa_register %rsp
        movq    RT_PF_RAX(%rsp), %rax
        movq    RT_PF_RBX(%rsp), %rbx
        movq    RT_PF_RCX(%rsp), %rcx
        movq    RT_PF_RDX(%rsp), %rdx
        movq    RT_PF_RSI(%rsp), %rsi
        movq    RT_PF_RDI(%rsp), %rdi
        movq    RT_PF_RBP(%rsp), %rbp
        movq    RT_PF_R8(%rsp), %r8
        movq    RT_PF_R9(%rsp), %r9
        movq    RT_PF_R10(%rsp), %r10
        movq    RT_PF_R11(%rsp), %r11
        movq    RT_PF_R12(%rsp), %r12
        movq    RT_PF_R13(%rsp), %r13
        movq    RT_PF_R14(%rsp), %r14
        movq    RT_PF_R15(%rsp), %r15
        addq    $RT_PF_RFLAGS, %rsp
        .cfi_adjust_cfa_offset -RT_PF_RFLAGS
        popfq
        .cfi_adjust_cfa_offset -8
        ret     $RT_PF_REDZONE
        .cfi_endproc
        .size   rt_async_preempt, .-rt_async_preempt

        .section .note.GNU-stack,"",@progbits
