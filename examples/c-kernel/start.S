/*
 * Entry, hypervisor and firmware calls, interrupt vectors and the switch
 * to problem state of the C example kernel (big-endian ELFv1).
 */

/* Loads the 64-bit address of `sym` into `reg`. */
.macro LOAD_ADDR reg, sym
    lis     \reg, \sym@highest
    ori     \reg, \reg, \sym@higher
    rldicr  \reg, \reg, 32, 31
    oris    \reg, \reg, \sym@high
    ori     \reg, \reg, \sym@l
.endm

#define SPRG1 273
#define SPRG2 274
#define SPRG3 275
#define DSISR 18
#define DAR 19
#define SRR0 26
#define SRR1 27

/* struct trap_frame in kernel.c: gpr[32], then these. */
#define F_CR 256
#define F_LR 264
#define F_CTR 272
#define F_XER 280
#define F_SRR0 288
#define F_SRR1 296
#define F_DAR 304
#define F_DSISR 312
#define F_VEC 320

/* struct kernel_context in kernel.c: r1, r2, r14..r31, cr, lr, msr. */
#define K_R1 0
#define K_R2 8
#define K_R14 16
#define K_CR 160
#define K_LR 168
#define K_MSR 176

    .section .text.boot, "ax"
    .globl _start
_start:
    /* Same meaning in 32- and 64-bit mode: MSR |= SF | FP, MSR &= ~EE. */
    mfmsr   %r11
    li      %r12, 1
    rldicr  %r12, %r12, 63, 0
    ori     %r12, %r12, 0x2000
    or      %r11, %r11, %r12
    li      %r12, 0
    ori     %r12, %r12, 0x8000
    andc    %r11, %r11, %r12
    mtmsrd  %r11
    isync
    LOAD_ADDR %r12, 1f
    mtctr   %r12
    bctr
1:  clrldi  %r31, %r5, 32           /* Open Firmware client interface */
    LOAD_ADDR %r1, boot_stack_top
    li      %r0, 0
    stdu    %r0, -128(%r1)
    LOAD_ADDR %r2, .TOC.
    LOAD_ADDR %r3, __bss_start
    LOAD_ADDR %r4, __bss_end
2:  cmpld   %r3, %r4
    bge     3f
    std     %r0, 0(%r3)
    addi    %r3, %r3, 8
    b       2b
3:  mr      %r3, %r31
    bl      c_main
    nop
4:  b       4b

    .text
/* int64_t hcall_raw(uint64_t opcode, uint64_t regs[8]): r4..r11 in and
 * out through regs; returns r3. */
    .globl hcall_raw
hcall_raw:
    stdu    %r1, -64(%r1)
    std     %r31, 56(%r1)
    mr      %r31, %r4
    ld      %r4, 0(%r31)
    ld      %r5, 8(%r31)
    ld      %r6, 16(%r31)
    ld      %r7, 24(%r31)
    ld      %r8, 32(%r31)
    ld      %r9, 40(%r31)
    ld      %r10, 48(%r31)
    ld      %r11, 56(%r31)
    sc      1
    std     %r4, 0(%r31)
    std     %r5, 8(%r31)
    std     %r6, 16(%r31)
    std     %r7, 24(%r31)
    std     %r8, 32(%r31)
    std     %r9, 40(%r31)
    std     %r10, 48(%r31)
    std     %r11, 56(%r31)
    ld      %r31, 56(%r1)
    addi    %r1, %r1, 64
    blr

/* int of_call(uint32_t args, uint32_t entry): the client interface runs in
 * 32-bit mode with real addresses; callee-saved registers are kept here. */
    .globl of_call
of_call:
    mflr    %r0
    std     %r0, 16(%r1)
    stdu    %r1, -256(%r1)
    std     %r2, 40(%r1)
    std     %r14, 48(%r1)
    std     %r15, 56(%r1)
    std     %r16, 64(%r1)
    std     %r17, 72(%r1)
    std     %r18, 80(%r1)
    std     %r19, 88(%r1)
    std     %r20, 96(%r1)
    std     %r21, 104(%r1)
    std     %r22, 112(%r1)
    std     %r23, 120(%r1)
    std     %r24, 128(%r1)
    std     %r25, 136(%r1)
    std     %r26, 144(%r1)
    std     %r27, 152(%r1)
    std     %r28, 160(%r1)
    std     %r29, 168(%r1)
    std     %r30, 176(%r1)
    std     %r31, 184(%r1)
    mfcr    %r0
    std     %r0, 192(%r1)
    mfmsr   %r0
    std     %r0, 200(%r1)
    clrldi  %r1, %r1, 4
    mtctr   %r4
    mfmsr   %r11
    li      %r12, 1
    rldicr  %r12, %r12, 63, 0
    andc    %r11, %r11, %r12
    mtmsrd  %r11
    isync
    bctrl
    mfmsr   %r11
    li      %r12, 1
    rldicr  %r12, %r12, 63, 0
    or      %r11, %r11, %r12
    mtmsrd  %r11
    isync
    /* The stack pointer's top half back: 0xc000000000000000 | low 32. */
    clrldi  %r1, %r1, 32
    li      %r12, 0x0c
    rldicr  %r12, %r12, 60, 3
    or      %r1, %r1, %r12
    ld      %r0, 200(%r1)
    mtmsrd  %r0
    isync
    ld      %r0, 192(%r1)
    mtcr    %r0
    ld      %r2, 40(%r1)
    ld      %r14, 48(%r1)
    ld      %r15, 56(%r1)
    ld      %r16, 64(%r1)
    ld      %r17, 72(%r1)
    ld      %r18, 80(%r1)
    ld      %r19, 88(%r1)
    ld      %r20, 96(%r1)
    ld      %r21, 104(%r1)
    ld      %r22, 112(%r1)
    ld      %r23, 120(%r1)
    ld      %r24, 128(%r1)
    ld      %r25, 136(%r1)
    ld      %r26, 144(%r1)
    ld      %r27, 152(%r1)
    ld      %r28, 160(%r1)
    ld      %r29, 168(%r1)
    ld      %r30, 176(%r1)
    ld      %r31, 184(%r1)
    addi    %r1, %r1, 256
    ld      %r0, 16(%r1)
    mtlr    %r0
    extsw   %r3, %r3
    blr

/*
 * Interrupt vector stub, copied to real address 0x100 * n (and 0x380,
 * 0x480) by install_vectors: frees r12 and r13 and CTR into SPRG2, SPRG1
 * and SPRG3 and jumps to trap_common with the vector in r12. 16
 * instructions.
 */
    .globl vector_stub, vector_stub_end
vector_stub:
    mtspr   SPRG1, %r13
    mtspr   SPRG2, %r12
    mfctr   %r13
    mtspr   SPRG3, %r13
    li      %r12, 0                 /* patched: the vector */
    LOAD_ADDR %r13, trap_common
    mtctr   %r13
    bctr
vector_stub_end:

/* Runs in real mode (MSR IR = DR = 0): the link addresses still work. */
trap_common:
    LOAD_ADDR %r13, trap_frame
    std     %r0, 0(%r13)
    std     %r1, 8(%r13)
    std     %r2, 16(%r13)
    std     %r3, 24(%r13)
    std     %r4, 32(%r13)
    std     %r5, 40(%r13)
    std     %r6, 48(%r13)
    std     %r7, 56(%r13)
    std     %r8, 64(%r13)
    std     %r9, 72(%r13)
    std     %r10, 80(%r13)
    std     %r11, 88(%r13)
    mfspr   %r0, SPRG2
    std     %r0, 96(%r13)
    mfspr   %r0, SPRG1
    std     %r0, 104(%r13)
    std     %r14, 112(%r13)
    std     %r15, 120(%r13)
    std     %r16, 128(%r13)
    std     %r17, 136(%r13)
    std     %r18, 144(%r13)
    std     %r19, 152(%r13)
    std     %r20, 160(%r13)
    std     %r21, 168(%r13)
    std     %r22, 176(%r13)
    std     %r23, 184(%r13)
    std     %r24, 192(%r13)
    std     %r25, 200(%r13)
    std     %r26, 208(%r13)
    std     %r27, 216(%r13)
    std     %r28, 224(%r13)
    std     %r29, 232(%r13)
    std     %r30, 240(%r13)
    std     %r31, 248(%r13)
    mfcr    %r0
    std     %r0, F_CR(%r13)
    mflr    %r0
    std     %r0, F_LR(%r13)
    mfspr   %r0, SPRG3
    std     %r0, F_CTR(%r13)
    mfxer   %r0
    std     %r0, F_XER(%r13)
    mfspr   %r0, SRR0
    std     %r0, F_SRR0(%r13)
    mfspr   %r0, SRR1
    std     %r0, F_SRR1(%r13)
    mfspr   %r0, DAR
    std     %r0, F_DAR(%r13)
    mfspr   %r0, DSISR
    std     %r0, F_DSISR(%r13)
    std     %r12, F_VEC(%r13)
    LOAD_ADDR %r1, trap_stack_top
    li      %r0, 0
    stdu    %r0, -128(%r1)
    LOAD_ADDR %r2, .TOC.
    mr      %r3, %r13
    bl      c_trap
    nop
    cmpdi   %r3, 0
    bne     to_kernel
    LOAD_ADDR %r13, trap_frame
    ld      %r0, F_SRR0(%r13)
    mtspr   SRR0, %r0
    ld      %r0, F_SRR1(%r13)
    mtspr   SRR1, %r0
    ld      %r0, F_CTR(%r13)
    mtctr   %r0
    ld      %r0, F_LR(%r13)
    mtlr    %r0
    ld      %r0, F_CR(%r13)
    mtcr    %r0
    ld      %r0, F_XER(%r13)
    mtxer   %r0
    ld      %r0, 0(%r13)
    ld      %r1, 8(%r13)
    ld      %r2, 16(%r13)
    ld      %r3, 24(%r13)
    ld      %r4, 32(%r13)
    ld      %r5, 40(%r13)
    ld      %r6, 48(%r13)
    ld      %r7, 56(%r13)
    ld      %r8, 64(%r13)
    ld      %r9, 72(%r13)
    ld      %r10, 80(%r13)
    ld      %r11, 88(%r13)
    ld      %r12, 96(%r13)
    ld      %r14, 112(%r13)
    ld      %r15, 120(%r13)
    ld      %r16, 128(%r13)
    ld      %r17, 136(%r13)
    ld      %r18, 144(%r13)
    ld      %r19, 152(%r13)
    ld      %r20, 160(%r13)
    ld      %r21, 168(%r13)
    ld      %r22, 176(%r13)
    ld      %r23, 184(%r13)
    ld      %r24, 192(%r13)
    ld      %r25, 200(%r13)
    ld      %r26, 208(%r13)
    ld      %r27, 216(%r13)
    ld      %r28, 224(%r13)
    ld      %r29, 232(%r13)
    ld      %r30, 240(%r13)
    ld      %r31, 248(%r13)
    ld      %r13, 104(%r13)
    rfid

/* Back to the kernel context enter_user saved, answering user_result. */
to_kernel:
    LOAD_ADDR %r13, kernel_context
    ld      %r1, K_R1(%r13)
    ld      %r2, K_R2(%r13)
    ld      %r14, K_R14+0(%r13)
    ld      %r15, K_R14+8(%r13)
    ld      %r16, K_R14+16(%r13)
    ld      %r17, K_R14+24(%r13)
    ld      %r18, K_R14+32(%r13)
    ld      %r19, K_R14+40(%r13)
    ld      %r20, K_R14+48(%r13)
    ld      %r21, K_R14+56(%r13)
    ld      %r22, K_R14+64(%r13)
    ld      %r23, K_R14+72(%r13)
    ld      %r24, K_R14+80(%r13)
    ld      %r25, K_R14+88(%r13)
    ld      %r26, K_R14+96(%r13)
    ld      %r27, K_R14+104(%r13)
    ld      %r28, K_R14+112(%r13)
    ld      %r29, K_R14+120(%r13)
    ld      %r30, K_R14+128(%r13)
    ld      %r31, K_R14+136(%r13)
    ld      %r0, K_CR(%r13)
    mtcr    %r0
    ld      %r0, K_LR(%r13)
    mtspr   SRR0, %r0
    ld      %r0, K_MSR(%r13)
    mtspr   SRR1, %r0
    LOAD_ADDR %r3, user_result
    ld      %r3, 0(%r3)
    rfid

/* uint64_t enter_user(pc, a0, msr, a1, a2): runs problem-state code at pc
 * with r3..r5 = a0..a2 until a system call or a refused fault sends it
 * back through to_kernel; answers user_result. */
    .globl enter_user
enter_user:
    LOAD_ADDR %r12, kernel_context
    std     %r1, K_R1(%r12)
    std     %r2, K_R2(%r12)
    std     %r14, K_R14+0(%r12)
    std     %r15, K_R14+8(%r12)
    std     %r16, K_R14+16(%r12)
    std     %r17, K_R14+24(%r12)
    std     %r18, K_R14+32(%r12)
    std     %r19, K_R14+40(%r12)
    std     %r20, K_R14+48(%r12)
    std     %r21, K_R14+56(%r12)
    std     %r22, K_R14+64(%r12)
    std     %r23, K_R14+72(%r12)
    std     %r24, K_R14+80(%r12)
    std     %r25, K_R14+88(%r12)
    std     %r26, K_R14+96(%r12)
    std     %r27, K_R14+104(%r12)
    std     %r28, K_R14+112(%r12)
    std     %r29, K_R14+120(%r12)
    std     %r30, K_R14+128(%r12)
    std     %r31, K_R14+136(%r12)
    mfcr    %r0
    std     %r0, K_CR(%r12)
    mflr    %r0
    std     %r0, K_LR(%r12)
    mfmsr   %r0
    std     %r0, K_MSR(%r12)
    mtspr   SRR0, %r3
    mtspr   SRR1, %r5
    mr      %r3, %r4
    mr      %r4, %r6
    mr      %r5, %r7
    rfid
