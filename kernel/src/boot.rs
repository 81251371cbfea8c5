//! Kernel entry: the first bytes of the image, then the Rust boot sequence.
//!
//! VOF jumps to the lowest loaded address (not `e_entry`) in 32-bit mode;
//! SLOF enters at the same place. r5 holds the Open Firmware client-interface
//! entry in both cases. skiboot (powernv) enters in 64-bit hypervisor state
//! at `e_entry`'s place in the ELF file QEMU copied to 0x20000000, with the
//! device tree in r3 and OPAL in r8/r9 (`crate::platform::powernv`);
//! `_start` then first copies the loadable segments to their real
//! addresses. `_start` sets MSR\[SF\] (and ME, FP), moves to the
//! link address (0xc000000000400000; real mode ignores the top 4 EA bits),
//! sets up the stack and TOC, clears BSS and calls [`kernel_entry`].

use core::arch::global_asm;

use arch_ppc64::registers::msr::Msr;

use crate::bootinfo::{self, BootInfo};
use crate::of::OpenFirmware;
use crate::{console, frame, harness, heap, mm, platform, smp, trap};

global_asm!(
    r#"
    .macro LOAD_ADDR reg, sym
    lis     \reg, \sym@highest
    ori     \reg, \reg, \sym@higher
    rldicr  \reg, \reg, 32, 31
    oris    \reg, \reg, \sym@high
    ori     \reg, \reg, \sym@l
    .endm

    .section .text.boot, "ax"
    .globl _start
    .p2align 2
_start:
    # These instructions mean the same in 32- and 64-bit mode.
    mfmsr   %r30                   # the firmware's MSR, for the banner
    # MSR |= SF (bit 0, 64-bit mode) | FP (bit 50) | ME (bit 51; a guest's
    # mtmsrd leaves ME unchanged, so this only matters on bare metal);
    # MSR &= ~EE (bit 48): no external/decrementer interrupts yet.
    mfmsr   %r11
    li      %r12, 1
    rldicr  %r12, %r12, 63, 0
    ori     %r12, %r12, 0x3000
    or      %r11, %r11, %r12
    li      %r12, 0
    ori     %r12, %r12, 0x8000
    andc    %r11, %r11, %r12
    mtmsrd  %r11
    isync

    # skiboot (powernv) enters in hypervisor state (MSR[HV], ISA bit 3),
    # which a pseries guest never sees; it passes the flattened device
    # tree in r3 and OPAL's base and entry in r8/r9, and runs the image
    # where QEMU copied the whole ELF file, at 0x20000000.
    li      %r27, 0
    li      %r28, 0
    li      %r29, 0
    rldicl. %r12, %r30, 4, 63
    beq     5f
    mr      %r27, %r3
    mr      %r28, %r8
    mr      %r29, %r9
    # Copy each PT_LOAD's file bytes to its real address (p_vaddr less
    # the top 4 bits, as on pseries); BSS is cleared below.
    lis     %r10, 0x2000           # the ELF file
    ld      %r11, 0x20(%r10)       # e_phoff
    add     %r11, %r11, %r10
    lhz     %r12, 0x38(%r10)       # e_phnum
    lhz     %r14, 0x36(%r10)       # e_phentsize
6:  cmpdi   %r12, 0
    beq     9f
    lwz     %r15, 0(%r11)          # p_type
    cmpwi   %r15, 1                # PT_LOAD
    bne     8f
    ld      %r16, 0x08(%r11)       # p_offset
    add     %r16, %r16, %r10
    ld      %r17, 0x10(%r11)       # p_vaddr
    clrldi  %r17, %r17, 4
    ld      %r18, 0x20(%r11)       # p_filesz
    mr      %r20, %r17
    add     %r21, %r17, %r18
7:  cmpd    %r20, %r21
    bge     71f
    ld      %r19, 0(%r16)
    std     %r19, 0(%r20)
    addi    %r16, %r16, 8
    addi    %r20, %r20, 8
    b       7b
    # The copy is code: push it out of the data cache and drop stale
    # instruction-cache lines (32-byte steps cover any block size).
71: mr      %r20, %r17
72: cmpd    %r20, %r21
    bge     73f
    dcbst   0, %r20
    addi    %r20, %r20, 32
    b       72b
73: sync
    mr      %r20, %r17
74: cmpd    %r20, %r21
    bge     8f
    icbi    0, %r20
    addi    %r20, %r20, 32
    b       74b
8:  add     %r11, %r11, %r14
    addi    %r12, %r12, -1
    b       6b
9:  sync
    isync

    # Continue at the link address.
5:  LOAD_ADDR %r12, 1f
    mtctr   %r12
    bctr
1:
    clrldi  %r31, %r5, 32          # OF client-interface entry (32-bit)
    LOAD_ADDR %r1, __boot_stack_top
    li      %r0, 0
    stdu    %r0, -128(%r1)         # terminate the back chain
    LOAD_ADDR %r2, .TOC.

    # Clear BSS (64-byte aligned in the link script).
    LOAD_ADDR %r3, __bss_start
    LOAD_ADDR %r4, __bss_end
2:  cmpld   %r3, %r4
    bge     3f
    std     %r0, 0(%r3)
    addi    %r3, %r3, 8
    b       2b
3:
    mr      %r3, %r31
    mr      %r4, %r30
    mr      %r5, %r27
    mr      %r6, %r28
    mr      %r7, %r29
    bl      kernel_entry
    nop
4:  b       4b
    .purgem LOAD_ADDR
"#
);

/// First Rust code: collects the boot information (through Open Firmware
/// on pseries, from skiboot's device tree on powernv), then sets up the
/// kernel and runs the test harness.
#[no_mangle]
extern "C" fn kernel_entry(
    of_entry: u64,
    firmware_msr: u64,
    fdt: u64,
    opal_base: u64,
    opal_entry: u64,
) -> ! {
    let powernv = firmware_msr & Msr::HV.bits() != 0;
    if powernv {
        platform::powernv::init(opal_base, opal_entry);
    }
    harness::note_entry();
    console::init_logger(log::LevelFilter::Info);
    println!();
    let info = if powernv {
        println!(
            "powernv kernel: entered in hypervisor state (MSR {firmware_msr:#x}), device tree at {fdt:#x}, OPAL at {opal_base:#x} entry {opal_entry:#x}"
        );
        platform::powernv::init_cpu();
        let info = platform::powernv::collect(fdt);
        match platform::powernv::stop_bmc_watchdog() {
            Ok(()) => println!("powernv: BMC watchdog stopped"),
            Err(e) => println!("powernv: BMC watchdog not stopped: {e:?}"),
        }
        info
    } else {
        println!(
            "pseries kernel: entered in {}-bit mode (MSR {firmware_msr:#x}), OF entry {of_entry:#x}",
            if firmware_msr >> 63 != 0 { 64 } else { 32 }
        );
        // SAFETY: `_start` passed the r5 the firmware gave us; nothing has
        // touched firmware memory, and we are in real mode.
        let of = unsafe { OpenFirmware::new(of_entry as u32) };
        match bootinfo::collect(&of) {
            Ok(info) => info,
            Err(e) => panic!("reading the device tree failed: {e:?}"),
        }
        // `of` ends here: the vector copy in trap::init overwrites VOF, so
        // there are no Open Firmware calls after this point.
    };
    let info: &'static BootInfo = bootinfo::set(info);
    if let Some(reg) = info.vty_reg {
        console::set_termno(reg);
    }
    print!("{info}");

    trap::init();
    frame::init_global(info);
    heap::init();
    mm::init(info);
    smp::init(info);
    harness::run()
}
