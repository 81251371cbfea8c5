//! The user program: a small position-independent PowerPC64 "agent" that
//! every process runs in problem state, and the [`Script`] builder kernel
//! tests use to tell it what to do.
//!
//! The agent (`global_asm!` below, big-endian, no absolute references, only
//! relative branches) is copied into a process's text segment at
//! [`TEXT_BASE`]. It interprets a script of fixed-size commands placed in
//! the data segment at [`SCRIPT_BASE`]: loads and stores (8 and 64 bit),
//! instruction fetch at an address, system calls with up to six arguments,
//! branches on the last result, spin loops (to be preempted), reports, a
//! timebase read and exit. So kernel tests drive real problem-state
//! accesses without any Rust code in user space (ELFv1 function
//! descriptors and absolute references would make that fragile).
//!
//! # Command format
//! Each command is [`CMD_WORDS`] big-endian doublewords: the opcode (low
//! byte; bit 8 = do not record the result), a *mods* word, and eight
//! operands. Nibble `i` of mods, when non-zero (`k`), adds variable
//! `vars[k - 1]` to operand `i` at run time, so addresses a system call
//! returned (e.g. a `vm_guatt` user address) can be used by later
//! commands. Variables live at [`VARS_BASE`].
//!
//! # Results
//! Every recording command stores its result (the *last result*) at
//! [`RESULTS_BASE`]: doubleword 0 is the count, then one doubleword per
//! result (at most [`RESULTS_MAX`] are kept; the count keeps going). The
//! kernel copies the area when the process ends.
//!
//! # System call ABI (`sc`, vector 0xc00)
//! r0 = system call number ([`crate::proc::syscall`]), r3..r8 = arguments,
//! r3 = return value (negative = `-errno` for the AIX services), r4 and
//! r5 = more values where documented (`wait`). Every other register is
//! preserved. After each system call the agent stores r5 in variable
//! [`SYSCALL_R5_VAR`], so a script can read `wait`'s killed flag as
//! `v(SYSCALL_R5_VAR, 0)`.

use alloc::vec::Vec;
use core::arch::global_asm;

/// Effective address of the text segment (ESID 1): the agent's entry.
pub const TEXT_BASE: u64 = 0x1000_0000;
/// Size of the text segment.
pub const TEXT_SIZE: u64 = 64 * 1024;
/// Effective address of the data segment (ESID 2).
pub const DATA_BASE: u64 = 0x2000_0000;
/// Size of the data segment.
pub const DATA_SIZE: u64 = 1024 * 1024;
/// Effective address of the stack segment (ESID 14, kept out of the
/// segment registers 3..13 and 15 that `as_att` hands out).
pub const STACK_BASE: u64 = 0xE000_0000;
/// Size of the stack segment.
pub const STACK_SIZE: u64 = 64 * 1024;
/// The agent's variables: 15 doublewords (`vars[0..15]`).
pub const VARS_BASE: u64 = DATA_BASE;
/// Number of variables.
pub const VARS: usize = 15;
/// The variable the agent overwrites with r5 after every system call
/// (scripts keep their own values in the others).
pub const SYSCALL_R5_VAR: u8 = 14;
/// The agent's scratch area for effective operands (8 doublewords; the
/// asm's `UA_EFF` offset from the variables).
pub const EFF_BASE: u64 = DATA_BASE + 0x80;
const _: () = assert!(EFF_BASE - VARS_BASE == 0x80 && VARS as u64 * 8 <= 0x80);
const _: () = assert!(RESULTS_BASE + 8 * (RESULTS_MAX as u64 + 1) <= SCRIPT_BASE);
const _: () = assert!(CMD_BYTES == 80, "UA_CMD_BYTES in the asm");
/// The results area: count, then results.
pub const RESULTS_BASE: u64 = DATA_BASE + 0x1000;
/// Results kept (the area is one page).
pub const RESULTS_MAX: usize = 511;
/// Where the script is copied.
pub const SCRIPT_BASE: u64 = DATA_BASE + 0x2000;
/// Largest script, in bytes.
pub const SCRIPT_MAX_BYTES: u64 = 0xE000;
/// Free data for tests to load and store (to the end of the data segment).
pub const SCRATCH_BASE: u64 = DATA_BASE + 0x10000;
/// Most threads a process may have, its first included
/// (`crate::proc::syscall::THREAD_CREATE`).
pub const THREADS_MAX: u32 = 8;
/// Where the agent areas of threads 1.. are: thread `k` has its
/// variables (and effective operands) at `THREAD_AREAS + k * 0x2000` and
/// its results page 0x1000 above (thread 0 uses [`VARS_BASE`] and
/// [`RESULTS_BASE`]).
pub const THREAD_AREAS: u64 = DATA_BASE + 0xE0000;
const THREAD_AREA_BYTES: u64 = 0x2000;
const _: () =
    assert!(THREAD_AREAS + THREADS_MAX as u64 * THREAD_AREA_BYTES <= DATA_BASE + DATA_SIZE);

/// Thread `k`'s variables.
pub const fn thread_vars_base(k: u32) -> u64 {
    if k == 0 {
        VARS_BASE
    } else {
        THREAD_AREAS + k as u64 * THREAD_AREA_BYTES
    }
}

/// Thread `k`'s results area.
pub const fn thread_results_base(k: u32) -> u64 {
    if k == 0 {
        RESULTS_BASE
    } else {
        thread_vars_base(k) + 0x1000
    }
}

/// Thread `k`'s initial stack pointer: 8 KiB of the stack segment each,
/// from the top.
pub const fn thread_stack_top(k: u32) -> u64 {
    STACK_BASE + STACK_SIZE - 256 - k as u64 * 0x2000
}
const _: () = assert!(thread_stack_top(THREADS_MAX - 1) - 0x2000 + 256 >= STACK_BASE);

/// Doublewords per command.
pub const CMD_WORDS: usize = 10;
/// Bytes per command.
pub const CMD_BYTES: u64 = CMD_WORDS as u64 * 8;

/// The agent's opcodes (low byte of a command's first doubleword).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    /// `exit(e0)`.
    Exit = 0,
    /// Last result = the byte at e0.
    Load8 = 1,
    /// Last result = the doubleword at e0.
    Load64 = 2,
    /// Store byte e1 at e0; last result = e1.
    Store8 = 3,
    /// Store doubleword e1 at e0; last result = e1.
    Store64 = 4,
    /// Call (bctrl) e0 with r3 = 0; last result = r3 on return.
    Fetch = 5,
    /// System call e0 with arguments e1..e6; last result = r3.
    Syscall = 6,
    /// If last result == e0, continue at command e1.
    BranchEq = 7,
    /// If last result != e0, continue at command e1.
    BranchNe = 8,
    /// Spin e0 iterations (problem-state work the decrementer preempts).
    Spin = 9,
    /// System call `report(last result)`; the last result is kept.
    Report = 10,
    /// `vars[e0] = last result`.
    Save = 11,
    /// Last result = e0 (not recorded).
    Set = 12,
    /// Last result = the timebase (`mftb`).
    Timebase = 13,
    /// `vars[e0] += e1`; last result = the new value (not recorded).
    AddVar = 14,
    /// System call e0 made e1 times in a tight loop, with arguments
    /// e2..e7; last result = the timebase ticks the loop took (so a
    /// measurement counts no interpreter work).
    SyscallLoop = 15,
    /// System call e0 with arguments e1..e6 and every other register the
    /// ELF ABI calls volatile set from the seed e7 (r2, r9..r13 = e7 + n,
    /// CTR = e7 + 33, LR = e7 + 34, CR = low word of e7, XER = CA and a
    /// byte count); last result = a mask of the registers that came back
    /// changed: bit n for rn (r0, r2, r4..r13), 32 CR, 33 CTR, 34 LR, 35
    /// XER. r3 is the result and not checked.
    SyscallProbe = 16,
}

/// Opcode flag: do not record this command's result.
pub const QUIET: u64 = 0x100;

// Register use: r31 script base, r30 current command, r29 last result,
// r28 vars, r27 results, r26 result count, r25 opcode word, r14..r21 the
// effective operands e0..e7, r22/r23 the system call loop's start time
// and count, r22..r24 the system call probe's scratch. All non-volatile, so a kernel that keeps only what the ABI
// says across `sc` still leaves them.
global_asm!(
    r#"
    .set UA_CMD_BYTES, 80
    .set UA_EFF, 0x80
    .set UA_RESULTS_MAX, 511
    .set UA_SYS_EXIT, 0
    .set UA_SYS_REPORT, 5
    .set UA_SYSCALL_R5, 14 * 8

    .section .text.user_agent, "ax"
    .globl __user_agent_start
    .p2align 7
__user_agent_start:
    # Entry: r3 = script, r4 = vars, r5 = results, r1 = stack top; a
    # thread enters at __user_agent_thread with r6 = its first command.
    mr      %r31, %r3
    mr      %r30, %r3
    b       ua_start
    .globl __user_agent_thread
__user_agent_thread:
    mr      %r31, %r3
    mulli   %r30, %r6, UA_CMD_BYTES
    add     %r30, %r30, %r3
ua_start:
    mr      %r28, %r4
    mr      %r27, %r5
    li      %r29, 0
    li      %r26, 0
    std     %r26, 0(%r27)
    stdu    %r1, -128(%r1)
ua_loop:
    ld      %r11, 8(%r30)
    addi    %r8, %r30, 16
    addi    %r7, %r28, UA_EFF
    li      %r9, 8
    mtctr   %r9
1:  ld      %r6, 0(%r8)
    andi.   %r5, %r11, 15
    beq     2f
    addi    %r5, %r5, -1
    sldi    %r5, %r5, 3
    ldx     %r5, %r28, %r5
    add     %r6, %r6, %r5
2:  std     %r6, 0(%r7)
    srdi    %r11, %r11, 4
    addi    %r8, %r8, 8
    addi    %r7, %r7, 8
    bdnz    1b
    ld      %r14, UA_EFF + 0(%r28)
    ld      %r15, UA_EFF + 8(%r28)
    ld      %r16, UA_EFF + 16(%r28)
    ld      %r17, UA_EFF + 24(%r28)
    ld      %r18, UA_EFF + 32(%r28)
    ld      %r19, UA_EFF + 40(%r28)
    ld      %r20, UA_EFF + 48(%r28)
    ld      %r21, UA_EFF + 56(%r28)
    ld      %r25, 0(%r30)
    clrldi  %r12, %r25, 56
    cmpdi   %r12, 0
    beq     ua_exit
    cmpdi   %r12, 1
    beq     ua_load8
    cmpdi   %r12, 2
    beq     ua_load64
    cmpdi   %r12, 3
    beq     ua_store8
    cmpdi   %r12, 4
    beq     ua_store64
    cmpdi   %r12, 5
    beq     ua_fetch
    cmpdi   %r12, 6
    beq     ua_syscall
    cmpdi   %r12, 7
    beq     ua_beq
    cmpdi   %r12, 8
    beq     ua_bne
    cmpdi   %r12, 9
    beq     ua_spin
    cmpdi   %r12, 10
    beq     ua_report
    cmpdi   %r12, 11
    beq     ua_save
    cmpdi   %r12, 12
    beq     ua_set
    cmpdi   %r12, 13
    beq     ua_tb
    cmpdi   %r12, 14
    beq     ua_addvar
    cmpdi   %r12, 15
    beq     ua_sysloop
    cmpdi   %r12, 16
    beq     ua_probe
    # Unknown opcode: a trap, which the kernel reports as a program fault.
    trap

ua_exit:
    li      %r0, UA_SYS_EXIT
    mr      %r3, %r14
    sc
    trap
ua_load8:
    lbz     %r29, 0(%r14)
    b       ua_record
ua_load64:
    ld      %r29, 0(%r14)
    b       ua_record
ua_store8:
    stb     %r15, 0(%r14)
    mr      %r29, %r15
    b       ua_record
ua_store64:
    std     %r15, 0(%r14)
    mr      %r29, %r15
    b       ua_record
ua_fetch:
    li      %r3, 0
    mtctr   %r14
    bctrl
    mr      %r29, %r3
    b       ua_record
ua_syscall:
    mr      %r0, %r14
    mr      %r3, %r15
    mr      %r4, %r16
    mr      %r5, %r17
    mr      %r6, %r18
    mr      %r7, %r19
    mr      %r8, %r20
    sc
    mr      %r29, %r3
    std     %r5, UA_SYSCALL_R5(%r28)
    b       ua_record
ua_beq:
    cmpd    %r29, %r14
    bne     ua_next
ua_jump:
    mulli   %r5, %r15, UA_CMD_BYTES
    add     %r30, %r31, %r5
    b       ua_loop
ua_bne:
    cmpd    %r29, %r14
    beq     ua_next
    b       ua_jump
ua_spin:
    cmpdi   %r14, 0
    beq     ua_next
    mtctr   %r14
1:  addi    %r5, %r5, 1
    bdnz    1b
    b       ua_next
ua_report:
    li      %r0, UA_SYS_REPORT
    mr      %r3, %r29
    sc
    b       ua_next
ua_save:
    sldi    %r5, %r14, 3
    stdx    %r29, %r28, %r5
    b       ua_next
ua_set:
    mr      %r29, %r14
    b       ua_next
ua_tb:
    mftb    %r29
    b       ua_record
ua_sysloop:
    mr      %r23, %r15
    mftb    %r22
1:  cmpdi   %r23, 0
    beq     2f
    mr      %r0, %r14
    mr      %r3, %r16
    mr      %r4, %r17
    mr      %r5, %r18
    mr      %r6, %r19
    mr      %r7, %r20
    mr      %r8, %r21
    sc
    addi    %r23, %r23, -1
    b       1b
2:  mftb    %r29
    subf    %r29, %r22, %r29
    b       ua_record
ua_probe:
    # Expected values: r23 = CR, r24 = XER as the hardware keeps them.
    li      %r24, 0x25
    oris    %r24, %r24, 0x2000
    mtxer   %r24
    mfxer   %r24
    addi    %r22, %r21, 33
    mtctr   %r22
    addi    %r22, %r21, 34
    mtlr    %r22
    mtcrf   0xff, %r21
    mfcr    %r23
    mr      %r0, %r14
    mr      %r3, %r15
    mr      %r4, %r16
    mr      %r5, %r17
    mr      %r6, %r18
    mr      %r7, %r19
    mr      %r8, %r20
    .irp n, 2,9,10,11,12,13
    addi    \n, %r21, \n
    .endr
    sc
    # No compare before CR is read: bit = (x | -x) >> 63 is 1 iff x != 0.
    mfcr    %r22
    xor     %r22, %r22, %r23
    neg     %r23, %r22
    or      %r22, %r22, %r23
    srdi    %r22, %r22, 63
    sldi    %r29, %r22, 32
    .macro UA_CHANGED bit
    neg     %r23, %r22
    or      %r22, %r22, %r23
    srdi    %r22, %r22, 63
    sldi    %r22, %r22, \bit
    or      %r29, %r29, %r22
    .endm
    mfxer   %r22
    xor     %r22, %r22, %r24
    UA_CHANGED 35
    mfctr   %r22
    addi    %r23, %r21, 33
    xor     %r22, %r22, %r23
    UA_CHANGED 33
    mflr    %r22
    addi    %r23, %r21, 34
    xor     %r22, %r22, %r23
    UA_CHANGED 34
    .irp n, 2,9,10,11,12,13
    addi    %r23, %r21, \n
    xor     %r22, \n, %r23
    UA_CHANGED \n
    .endr
    xor     %r22, %r0, %r14
    UA_CHANGED 0
    xor     %r22, %r4, %r16
    UA_CHANGED 4
    xor     %r22, %r5, %r17
    UA_CHANGED 5
    xor     %r22, %r6, %r18
    UA_CHANGED 6
    xor     %r22, %r7, %r19
    UA_CHANGED 7
    xor     %r22, %r8, %r20
    UA_CHANGED 8
    .purgem UA_CHANGED
    b       ua_record
ua_addvar:
    sldi    %r5, %r14, 3
    ldx     %r6, %r28, %r5
    add     %r6, %r6, %r15
    stdx    %r6, %r28, %r5
    mr      %r29, %r6
    b       ua_next

ua_record:
    andi.   %r5, %r25, 0x100
    bne     ua_next
    addi    %r26, %r26, 1
    std     %r26, 0(%r27)
    cmpldi  %r26, UA_RESULTS_MAX
    bgt     ua_next
    sldi    %r5, %r26, 3
    stdx    %r29, %r27, %r5
ua_next:
    addi    %r30, %r30, UA_CMD_BYTES
    b       ua_loop
    # A routine for fetch tests: returns 42 in r3.
    .globl __user_agent_probe
__user_agent_probe:
    li      %r3, 42
    blr
    .globl __user_agent_end
__user_agent_end:
"#
);

extern "C" {
    static __user_agent_start: u8;
    static __user_agent_thread: u8;
    static __user_agent_end: u8;
    static __user_agent_probe: u8;
}

/// User address where a thread made by `thread_create` enters the agent
/// (r3 = script, r4 = its variables, r5 = its results, r6 = the index of
/// its first command, r1 = its stack).
pub fn thread_entry_address() -> u64 {
    // Only addresses are taken.
    let off = &raw const __user_agent_thread as u64 - &raw const __user_agent_start as u64;
    TEXT_BASE + off
}

/// User address of the agent's probe routine (`li r3, 42; blr`), for
/// [`Script::fetch`] tests of executable text.
pub fn probe_address() -> u64 {
    // Only addresses are taken.
    let off = &raw const __user_agent_probe as u64 - &raw const __user_agent_start as u64;
    TEXT_BASE + off
}

/// The agent's machine code, to copy to [`TEXT_BASE`] (entry at offset 0).
pub fn agent_code() -> &'static [u8] {
    // Only the addresses of the two labels are taken; the bytes between
    // them are the assembled agent in the kernel's read-only text.
    let (start, end) = (
        &raw const __user_agent_start as usize,
        &raw const __user_agent_end as usize,
    );
    // SAFETY: both labels bracket the agent in the same section, start
    // before end; the kernel image is never written.
    unsafe { core::slice::from_raw_parts(start as *const u8, end - start) }
}

/// A command operand: a literal, or a literal plus a variable read when
/// the command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operand {
    /// The literal part.
    pub value: u64,
    /// `Some(k)`: add `vars[k]` at run time.
    pub var: Option<u8>,
}

impl Operand {
    /// `vars[k] + offset`, read when the command runs.
    pub const fn var(k: u8, offset: u64) -> Operand {
        Operand {
            value: offset,
            var: Some(k),
        }
    }
}

impl From<u64> for Operand {
    fn from(value: u64) -> Self {
        Operand { value, var: None }
    }
}

impl From<i64> for Operand {
    fn from(value: i64) -> Self {
        Operand {
            value: value as u64,
            var: None,
        }
    }
}

/// `vars[k] + offset` (shorthand for [`Operand::var`]).
pub const fn v(k: u8, offset: u64) -> Operand {
    Operand::var(k, offset)
}

/// A script for the agent, built command by command.
#[derive(Clone, Debug, Default)]
pub struct Script {
    cmds: Vec<[u64; CMD_WORDS]>,
}

impl Script {
    /// An empty script (append an [`Script::exit`]: running off the end
    /// executes zeroes, which is `exit(0)`).
    pub fn new() -> Self {
        Script::default()
    }

    /// Index the next command will have (a branch target).
    pub fn here(&self) -> usize {
        self.cmds.len()
    }

    fn push(&mut self, op: Op, operands: &[Operand]) -> &mut Self {
        assert!(operands.len() <= 8, "at most 8 operands");
        let mut c = [0u64; CMD_WORDS];
        c[0] = op as u64;
        for (i, o) in operands.iter().enumerate() {
            c[2 + i] = o.value;
            if let Some(k) = o.var {
                assert!((k as usize) < VARS, "variable {k} out of range");
                c[1] |= (k as u64 + 1) << (4 * i);
            }
        }
        self.cmds.push(c);
        self
    }

    /// Marks the last command as not recording its result.
    pub fn quiet(&mut self) -> &mut Self {
        if let Some(c) = self.cmds.last_mut() {
            c[0] |= QUIET;
        }
        self
    }

    /// `exit(status)`.
    pub fn exit(&mut self, status: impl Into<Operand>) -> &mut Self {
        self.push(Op::Exit, &[status.into()])
    }

    /// Loads the byte at `addr` (recorded).
    pub fn load8(&mut self, addr: impl Into<Operand>) -> &mut Self {
        self.push(Op::Load8, &[addr.into()])
    }

    /// Loads the doubleword at `addr` (recorded).
    pub fn load64(&mut self, addr: impl Into<Operand>) -> &mut Self {
        self.push(Op::Load64, &[addr.into()])
    }

    /// Stores byte `value` at `addr` (records `value`).
    pub fn store8(&mut self, addr: impl Into<Operand>, value: impl Into<Operand>) -> &mut Self {
        self.push(Op::Store8, &[addr.into(), value.into()])
    }

    /// Stores doubleword `value` at `addr` (records `value`).
    pub fn store64(&mut self, addr: impl Into<Operand>, value: impl Into<Operand>) -> &mut Self {
        self.push(Op::Store64, &[addr.into(), value.into()])
    }

    /// Calls the code at `addr` with r3 = 0 and records r3 when it returns.
    pub fn fetch(&mut self, addr: impl Into<Operand>) -> &mut Self {
        self.push(Op::Fetch, &[addr.into()])
    }

    /// System call `nr` with up to six arguments (recorded r3).
    pub fn syscall(&mut self, nr: u64, args: &[Operand]) -> &mut Self {
        assert!(args.len() <= 6, "at most 6 system call arguments");
        let mut ops = [Operand::from(0u64); 7];
        ops[0] = nr.into();
        ops[1..=args.len()].copy_from_slice(args);
        self.push(Op::Syscall, &ops)
    }

    /// System call `nr` made `n` times in a tight loop with up to six
    /// arguments; the last result is the timebase ticks the `n` calls took
    /// (recorded), with no interpreter work inside.
    pub fn syscall_loop(&mut self, nr: u64, n: u64, args: &[Operand]) -> &mut Self {
        assert!(args.len() <= 6, "at most 6 system call arguments");
        let mut ops = [Operand::from(0u64); 8];
        ops[0] = nr.into();
        ops[1] = n.into();
        ops[2..2 + args.len()].copy_from_slice(args);
        self.push(Op::SyscallLoop, &ops)
    }

    /// System call `nr` with up to six arguments and the other volatile
    /// registers set from `seed` (see [`Op::SyscallProbe`]): records the
    /// mask of registers the call changed, 0 when it kept them all.
    pub fn syscall_probe(&mut self, nr: u64, args: &[Operand], seed: u64) -> &mut Self {
        assert!(args.len() <= 6, "at most 6 system call arguments");
        let mut ops = [Operand::from(0u64); 8];
        ops[0] = nr.into();
        ops[1..=args.len()].copy_from_slice(args);
        ops[7] = seed.into();
        self.push(Op::SyscallProbe, &ops)
    }

    /// `fork()`: the last result is 0 in the child and the child's pid in
    /// the parent (recorded).
    pub fn fork(&mut self) -> &mut Self {
        self.syscall(crate::proc::syscall::FORK, &[])
    }

    /// `thread_create(first)`: a new thread of this process that runs the
    /// script from command `first` with variables and results of its own
    /// ([`thread_vars_base`], [`thread_results_base`]); the last result is
    /// its index (recorded), or `-EAGAIN` past [`THREADS_MAX`].
    pub fn thread_create(&mut self, first: usize) -> &mut Self {
        self.syscall(
            crate::proc::syscall::THREAD_CREATE,
            &[(first as u64).into()],
        )
    }

    /// `thread_exit(status)`: ends the calling thread; the process ends
    /// (with `status` if nothing else ended it) when it was the last.
    pub fn thread_exit(&mut self, status: impl Into<Operand>) -> &mut Self {
        self.syscall(crate::proc::syscall::THREAD_EXIT, &[status.into()])
    }

    /// `wait()`: the last result is the child's exit status, or a
    /// [`crate::proc::KILLED`] code (recorded); variable
    /// [`SYSCALL_R5_VAR`] then says whether the child was killed (1) or
    /// exited (0).
    pub fn wait(&mut self) -> &mut Self {
        self.syscall(crate::proc::syscall::WAIT, &[])
    }

    /// If the last result equals `value`, continue at command `target`.
    pub fn branch_eq(&mut self, value: impl Into<Operand>, target: usize) -> &mut Self {
        self.push(Op::BranchEq, &[value.into(), (target as u64).into()])
    }

    /// If the last result differs from `value`, continue at command
    /// `target`.
    pub fn branch_ne(&mut self, value: impl Into<Operand>, target: usize) -> &mut Self {
        self.push(Op::BranchNe, &[value.into(), (target as u64).into()])
    }

    /// Sets the target of the branch at command `at` (for forward
    /// branches).
    pub fn patch_target(&mut self, at: usize, target: usize) -> &mut Self {
        let op = self.cmds[at][0] & 0xff;
        assert!(
            op == Op::BranchEq as u64 || op == Op::BranchNe as u64,
            "command {at} is not a branch"
        );
        self.cmds[at][3] = target as u64;
        self
    }

    /// Sets the first command of the thread the `thread_create` at
    /// command `at` makes (for threads whose code comes later).
    pub fn patch_thread_start(&mut self, at: usize, first: usize) -> &mut Self {
        let c = &mut self.cmds[at];
        assert!(
            c[0] & 0xff == Op::Syscall as u64 && c[2] == crate::proc::syscall::THREAD_CREATE,
            "command {at} is not a thread_create"
        );
        c[3] = first as u64;
        self
    }

    /// Spins `n` iterations.
    pub fn spin(&mut self, n: u64) -> &mut Self {
        self.push(Op::Spin, &[n.into()])
    }

    /// Reports the last result to the kernel (system call `report`).
    pub fn report(&mut self) -> &mut Self {
        self.push(Op::Report, &[])
    }

    /// `vars[k] = last result`.
    pub fn save(&mut self, k: u8) -> &mut Self {
        assert!((k as usize) < VARS, "variable {k} out of range");
        self.push(Op::Save, &[(k as u64).into()])
    }

    /// Last result = `value` (not recorded).
    pub fn set(&mut self, value: impl Into<Operand>) -> &mut Self {
        self.push(Op::Set, &[value.into()])
    }

    /// `vars[k] = value`.
    pub fn set_var(&mut self, k: u8, value: impl Into<Operand>) -> &mut Self {
        self.set(value).save(k)
    }

    /// `vars[k] += delta`; the last result is the new value.
    pub fn add_var(&mut self, k: u8, delta: impl Into<Operand>) -> &mut Self {
        assert!((k as usize) < VARS, "variable {k} out of range");
        self.push(Op::AddVar, &[(k as u64).into(), delta.into()])
    }

    /// Records the timebase.
    pub fn timebase(&mut self) -> &mut Self {
        self.push(Op::Timebase, &[])
    }

    /// A command with an opcode the agent does not know: it executes
    /// `trap` (a program interrupt), for tests of that kill path.
    pub fn invalid(&mut self) -> &mut Self {
        let mut c = [0u64; CMD_WORDS];
        c[0] = 0xff;
        self.cmds.push(c);
        self
    }

    /// The script as the agent reads it (big-endian doublewords).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.cmds.len() * CMD_BYTES as usize);
        for c in &self.cmds {
            for w in c {
                out.extend_from_slice(&w.to_be_bytes());
            }
        }
        out
    }
}

/// Machine code tests store into memory to execute with [`Script::fetch`]:
/// `li r3, 42; blr` (the fetch records 42 where execution is allowed).
pub const LI_R3_42_BLR: u64 = 0x3860_002a_4e80_0020;
