//! Kernel entry: the first bytes of the image, then the Rust boot sequence.
//!
//! VOF jumps to the lowest loaded address (not `e_entry`) in 32-bit mode;
//! SLOF enters at the same place. r5 holds the Open Firmware client-interface
//! entry in both cases. `_start` sets MSR\[SF\] (and ME, FP), moves to the
//! link address (0xc000000000400000; real mode ignores the top 4 EA bits),
//! sets up the stack and TOC, clears BSS and calls [`kernel_entry`].

use core::arch::global_asm;

use crate::bootinfo::{self, BootInfo};
use crate::of::OpenFirmware;
use crate::{console, frame, harness, heap, mm, smp, trap};

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

    # Continue at the link address.
    LOAD_ADDR %r12, 1f
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
    bl      kernel_entry
    nop
4:  b       4b
    .purgem LOAD_ADDR
"#
);

/// First Rust code: collects the boot information through Open Firmware,
/// then sets up the kernel and runs the test harness.
#[no_mangle]
extern "C" fn kernel_entry(of_entry: u64, firmware_msr: u64) -> ! {
    harness::note_entry();
    console::init_logger(log::LevelFilter::Info);
    println!();
    println!(
        "pseries kernel: entered in {}-bit mode (MSR {firmware_msr:#x}), OF entry {of_entry:#x}",
        if firmware_msr >> 63 != 0 { 64 } else { 32 }
    );

    let info = {
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
