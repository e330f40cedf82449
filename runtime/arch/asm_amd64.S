// Context switching for x86-64 System V (Go's asm_amd64.s: gogo, mcall,
// systemstack, goexit).
//
// A suspended context is a stack pointer. The stack it points to holds,
// from low to high address: the saved MXCSR (4 bytes) and x87 control word
// (4 bytes), r15, r14, r13, r12, rbx, rbp, and the return address. These
// are exactly the callee-saved registers of the ABI, so switching inside a
// function call preserves everything the caller may rely on.
//
// A new goroutine's stack is laid out by the C++ side as if it had been
// suspended with its return address at rt_gostart, r12 = argument and
// r13 = entry function.

        .section .text.rt_arch,"ax",@progbits

// The callee-saved registers in the order of a suspended context (above):
// pushed rbp first, so r15 ends lowest. With CFI, for frames an unwinder
// may walk through.
.macro PUSH_CALLEE_SAVED
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        pushq   %r15
        .cfi_adjust_cfa_offset 8
.endm

.macro POP_CALLEE_SAVED
        popq    %r15
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
.endm

// void rt_gogo(void* sp)  -- resumes a suspended context, never returns.
        .globl  rt_gogo
        .type   rt_gogo, @function
        .p2align 4
rt_gogo:
        .cfi_startproc
        movq    %rdi, %rsp
        // Loading MXCSR and the x87 control word stalls the pipeline;
        // reading them does not. Load only what differs (almost never).
        stmxcsr -8(%rsp)
        movl    -8(%rsp), %eax
        cmpl    0(%rsp), %eax
        je      1f
        ldmxcsr 0(%rsp)
1:
        fnstcw  -8(%rsp)
        movw    -8(%rsp), %ax
        cmpw    4(%rsp), %ax
        je      2f
        fldcw   4(%rsp)
2:
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   rt_gogo, .-rt_gogo

// void rt_mcall(void** save_sp, uintptr_t g0_top, void (*fn)(void*), void* arg)
// Suspends the current context into *save_sp, switches to the g0 stack at
// g0_top and calls fn(arg) there. fn must not return; the suspended context
// is later resumed by rt_gogo(*save_sp), which makes rt_mcall return.
        .globl  rt_mcall
        .type   rt_mcall, @function
        .p2align 4
rt_mcall:
        .cfi_startproc
        PUSH_CALLEE_SAVED
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr 0(%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        // On the g0 stack nothing lies above fn's frame: end unwinding
        // here (pthread_exit unwinds the g0 stack of an exiting M).
        .cfi_undefined rip
        movq    %rcx, %rdi
        xorl    %ebp, %ebp
        call    *%rdx
        ud2
        .cfi_endproc
        .size   rt_mcall, .-rt_mcall

// void rt_systemstack_switch(uintptr_t g0_top, void (*fn)(void*), void* arg)
// Runs fn(arg) on the g0 stack and returns on the original stack.
        .globl  rt_systemstack_switch
        .type   rt_systemstack_switch, @function
        .p2align 4
rt_systemstack_switch:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_offset %rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register %rbp
        movq    %rdi, %rsp
        movq    %rdx, %rdi
        call    *%rsi
        movq    %rbp, %rsp
        popq    %rbp
        .cfi_def_cfa %rsp, 8
        ret
        .cfi_endproc
        .size   rt_systemstack_switch, .-rt_systemstack_switch

// void rt_entersyscall(void)
// Pushes the callee-saved registers, hands their address to
// rt_entersyscall_body (which copies them and the caller's stack pointer
// into the G for the collector), and returns with them intact.
        .globl  rt_entersyscall
        .type   rt_entersyscall, @function
        .p2align 4
rt_entersyscall:
        .cfi_startproc
        PUSH_CALLEE_SAVED
        movq    %rsp, %rdi
        // Six pushes and the return address: rsp is 8 mod 16 here, so one
        // more word aligns the call.
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        call    rt_entersyscall_body
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        POP_CALLEE_SAVED
        ret
        .cfi_endproc
        .size   rt_entersyscall, .-rt_entersyscall

// First frame of every goroutine: calls r13(r12). The CFI marks the return
// address as undefined so that unwinders (C++ exceptions, backtraces) stop
// here instead of walking into whatever lies above the stack.
        .globl  rt_gostart
        .type   rt_gostart, @function
        .p2align 4
rt_gostart:
        .cfi_startproc
        .cfi_undefined rip
        xorl    %ebp, %ebp
        movq    %r12, %rdi
        call    *%r13
        ud2
        .cfi_endproc
        .size   rt_gostart, .-rt_gostart

        .section .note.GNU-stack,"",@progbits
