//! `vm_galloc` memory from the kernel: it lives in kernel global segments
//! (0xF100…) and is reached through the HPT, each first touch resolved by
//! the VMM from the real data segment and data storage interrupts.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use arch_ppc64::addr::EffectiveAddress;
use arch_ppc64::registers::msr::Msr;
use vmm::aix::V_WORKING;
use vmm::platform::HptBackend;

use crate::mm;
use crate::trap::{self, TrapFrame, Vector};

const PAGE: u64 = 4096;

fn galloc(size: u64) -> u64 {
    mm::with_aix(|a| a.vm_galloc(V_WORKING, size as _)).expect("vm_galloc")
}

fn gfree(addr: u64, size: u64) {
    mm::with_aix(|a| a.vm_gfree(addr, size as _)).expect("vm_gfree");
}

/// Drops every on-demand SLB entry of the VMM from the processor, so the
/// next touch of a VMM segment takes a segment interrupt.
fn flush_vmm_slb() {
    mm::with_vmm(|v| v.flush_slb());
}

fn read(addr: u64) -> u64 {
    // SAFETY: VMM memory the test allocated; a fault is resolved by the
    // VMM (or, if refused, panics with the report).
    unsafe { (addr as *const u64).read_volatile() }
}

fn write(addr: u64, v: u64) {
    // SAFETY: as for `read`.
    unsafe { (addr as *mut u64).write_volatile(v) }
}

static FREED: AtomicU64 = AtomicU64::new(0);
static NESTED_ADDR: AtomicU64 = AtomicU64::new(0);
static HANDLER_MSR: AtomicU64 = AtomicU64::new(0);

/// A system call handler that touches VMM memory: the first touch takes
/// a data segment and a data storage interrupt nested inside this one.
fn sc_touching_vmm_memory(frame: &mut TrapFrame) {
    HANDLER_MSR.store(arch_ppc64::registers::msr::read().bits(), Ordering::SeqCst);
    let a = NESTED_ADDR.load(Ordering::SeqCst);
    let old = read(a);
    write(a, frame.gpr[3]);
    frame.gpr[3] = old + read(a);
}

fn touch_freed() {
    let _ = read(FREED.load(Ordering::SeqCst));
}

kernel_test! {
    fn fault_nested_in_a_system_call_handler_is_resolved() {
        let a = galloc(PAGE);
        NESTED_ADDR.store(a + 64, Ordering::SeqCst);
        flush_vmm_slb();
        let prev = trap::set_handler(Vector::SystemCall, Some(sc_touching_vmm_memory));
        let before = mm::stats();
        let r3: u64;
        // SAFETY: `sc` from the kernel enters the handler above, which
        // returns after itself with r3 set; r0 and r4-r12, CTR, XER and
        // the volatile CR fields are declared clobbered as for a call.
        unsafe {
            core::arch::asm!(
                "sc",
                inout("r3") 41u64 => r3,
                // Not clobber_abi("C"): that saves FPRs, which faults
                // with MSR[FP] = 0. The trap path restores every GPR but
                // r3; the volatile ones are declared anyway.
                out("r0") _, out("r4") _, out("r5") _, out("r6") _, out("r7") _,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _, out("r12") _,
                out("ctr") _, out("xer") _, out("cr0") _, out("cr1") _, out("cr5") _,
                out("cr6") _, out("cr7") _,
            );
        }
        trap::set_handler(Vector::SystemCall, prev);
        let after = mm::stats();
        assert_eq!(r3, 41, "old value 0 (zero-filled) + the stored 41");
        assert_eq!(read(a + 64), 41, "the store inside the handler stands");
        assert!(after.data_segment > before.data_segment && after.dsi > before.dsi, "nested faults taken");
        let msr = Msr::from_bits_retain(HANDLER_MSR.load(Ordering::SeqCst));
        assert!(msr.contains(Msr::IR | Msr::DR), "handler ran translated: {:#x}", msr.bits());
        gfree(a, PAGE);
    }

    fn vm_galloc_memory_is_zero_filled_and_reads_back() {
        let pages = 5;
        let a = galloc(pages * PAGE);
        assert_eq!(a >> 60, 0xF, "a kernel global segment address: {a:#x}");
        flush_vmm_slb();
        let before = mm::stats();
        for p in 0..pages {
            for off in [0, 8, PAGE - 8] {
                assert_eq!(read(a + p * PAGE + off), 0, "zero-filled at page {p} offset {off}");
            }
        }
        for p in 0..pages {
            write(a + p * PAGE + 16, 0xabcd_0000 + p);
        }
        for p in 0..pages {
            assert_eq!(read(a + p * PAGE + 16), 0xabcd_0000 + p);
        }
        let after = mm::stats();
        assert!(after.data_segment > before.data_segment, "a data segment interrupt was taken");
        assert!(after.slb_misses > before.slb_misses, "the VMM loaded the SLB entry");
        assert!(after.dsi >= before.dsi + pages, "one DSI per page at least");
        assert!(after.zero_fills >= before.zero_fills + pages, "each page zero-filled once");
        assert!(after.hpt_inserts >= before.hpt_inserts + pages);
        gfree(a, pages * PAGE);
    }

    fn vm_gfree_makes_the_kernel_fault_with_a_report() {
        let a = galloc(2 * PAGE);
        write(a + PAGE, 7);
        assert_eq!(read(a + PAGE), 7);
        gfree(a, 2 * PAGE);
        FREED.store(a + PAGE, Ordering::SeqCst);
        let before = mm::stats();
        assert!(crate::harness::panics_with(touch_freed, "kernel fault at 0x"), "touching freed vm_galloc memory panics");
        let after = mm::stats();
        assert_eq!(after.kernel_faults, before.kernel_faults + 1, "counted as a kernel fault");
        assert!(after.faults_refused > before.faults_refused, "the VMM refused it");
        // The lock was released before the panic: the VMM still works.
        let b = galloc(PAGE);
        write(b, 1);
        assert_eq!(read(b), 1);
        gfree(b, PAGE);
    }

    fn galloc_segments_translate_through_the_vmm_mapping() {
        let a = galloc(PAGE);
        write(a, 0x55);
        let (sid, frame) = mm::with_vmm(|v| {
            let (_, m) = v.mapping_for(EffectiveAddress::new(a)).expect("mapped in the kernel space");
            let sid = m.handle.sid();
            (sid, v.page_frame(sid, 0).expect("page").expect("resident"))
        });
        // The frame behind the page holds the value, seen through the linear map.
        // SAFETY: the VMM's frame, read through the linear map.
        let v = unsafe { (crate::bootinfo::real_to_virt(frame.as_u64()) as *const u64).read_volatile() };
        assert_eq!(v, 0x55, "SID {sid:?}");
        gfree(a, PAGE);
    }

    fn kernel_hpt_pressure_evicts_and_every_page_reads_back() {
        // Pages of several segments chosen to hash into one PTEG pair
        // (G, !G): more than its 16 slots (24), so inserts must evict.
        // Up to 2^16 PTEGs (a 512 MiB guest) each 256 MB segment has 1 or
        // 2 such pages per group; in a larger table only a segment whose
        // VSID agrees with G above its 16 page bits has one, so the
        // segments allowed grow with the table, and a segment without
        // such a page is given back at once.
        const WANT: usize = 24;
        let seg_bytes = 256u64 << 20;
        let (mask, g) = mm::with_vmm(|v| {
            let mask = v.hpt_backend().pteg_count() - 1;
            (mask, 0x1234 & mask)
        });
        let max_tries = 64 * ((mask + 1) >> 16).max(1);
        let mut pages = Vec::new();
        let mut bases = Vec::new();
        let mut tries = 0;
        while pages.len() < WANT {
            assert!(tries < max_tries, "no {WANT} pages in {tries} segments");
            tries += 1;
            let base = galloc(seg_bytes);
            let vsid = mm::with_vmm(|v| {
                let (_, m) = v.mapping_for(EffectiveAddress::new(base)).expect("mapping");
                v.vsid(m.translation_sid()).as_u64()
            });
            // 4K pages: hash = VSID ^ page; pages whose hash is G or !G.
            let found = pages.len();
            for target in [g, !g & mask] {
                let mut p = (vsid ^ target) & mask;
                while p < seg_bytes / PAGE {
                    pages.push(base + p * PAGE);
                    p += mask + 1;
                }
            }
            if pages.len() == found {
                gfree(base, seg_bytes);
            } else {
                bases.push(base);
            }
        }
        assert!(pages.len() > 16, "{} pages for one PTEG pair", pages.len());
        let before = mm::stats();
        for (i, &p) in pages.iter().enumerate() {
            write(p + 8, 0x9000 + i as u64);
        }
        for round in 0..2 {
            for (i, &p) in pages.iter().enumerate() {
                assert_eq!(read(p + 8), 0x9000 + i as u64, "round {round}, page {i} at {p:#x}");
                assert_eq!(read(p), 0, "rest of the page still zero");
            }
        }
        let after = mm::stats();
        assert!(after.hpt_evictions > before.hpt_evictions, "evictions: {} -> {}", before.hpt_evictions, after.hpt_evictions);
        for b in bases {
            gfree(b, seg_bytes);
        }
    }
}

kernel_test! {
    fn c_abi_vm_galloc_and_vm_gfree_reach_the_same_instance() {
        let mut addr: u64 = 0;
        // SAFETY: `addr` is a valid ulong to write.
        let rc = unsafe { vmm::aix::cabi::vm_galloc(V_WORKING, 2 * PAGE as i64, &mut addr) };
        assert_eq!(rc, 0, "vm_galloc returns 0");
        assert_eq!(addr >> 60, 0xF, "a global kernel address {addr:#x}");
        // The Rust side sees the allocation the C call made.
        assert!(mm::with_aix(|a| a.allocations().any(|al| al.start == addr)));
        write(addr + PAGE, 3);
        assert_eq!(read(addr + PAGE), 3);
        assert_eq!(vmm::aix::cabi::vm_gfree(addr, 2 * PAGE as i64), 0);
        assert_ne!(vmm::aix::cabi::vm_gfree(addr, 2 * PAGE as i64), 0, "second free refused (EINVAL)");
        assert!(!mm::with_aix(|a| a.allocations().any(|al| al.start == addr)));
    }
}

/// `blr` (ISA: bclr 20,0,0).
const BLR: u32 = 0x4e80_0020;
/// `li r3, 0x77` (addi r3, 0, 0x77).
const LI_R3_0X77: u32 = 0x3860_0077;

static CODE_AT: AtomicU64 = AtomicU64::new(0);

/// Writes `li r3, 0x77; blr` at `addr` and makes it fetchable.
fn plant_code(addr: u64) {
    // SAFETY: VMM memory this test owns; a fault is resolved by the VMM.
    unsafe {
        (addr as *mut u32).write_volatile(LI_R3_0X77);
        ((addr + 4) as *mut u32).write_volatile(BLR);
        core::arch::asm!(
            "dcbst 0, {a}", "sync", "icbi 0, {a}", "sync", "isync",
            a = in(reg) addr,
        );
    }
}

/// Calls the code at [`CODE_AT`] with `mtctr; bctrl` (not through a
/// Rust function pointer: an ELFv1 call loads the descriptor with loads
/// LLVM treats as invariant, which it may move above the stores that
/// build a descriptor on the stack).
fn call_planted() -> u64 {
    let r3: u64;
    // SAFETY: the planted code sets r3 and returns with blr; everything a
    // call may clobber is declared (not clobber_abi("C"), which would
    // save FPRs).
    unsafe {
        core::arch::asm!(
            "mtctr {e}",
            "bctrl",
            e = in(reg) CODE_AT.load(Ordering::SeqCst),
            out("r3") r3,
            out("r0") _, out("r4") _, out("r5") _, out("r6") _, out("r7") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _, out("r12") _,
            out("ctr") _, out("lr") _, out("xer") _, out("cr0") _, out("cr1") _,
            out("cr5") _, out("cr6") _, out("cr7") _,
        );
    }
    r3
}

fn call_planted_ignoring_result() {
    let _ = call_planted();
}

kernel_test! {
    fn instruction_fetch_from_vm_galloc_memory_is_resolved() {
        let a = galloc(2 * PAGE);
        plant_code(a + PAGE);
        CODE_AT.store(a + PAGE, Ordering::SeqCst);
        // Drop the translation so the fetch itself faults: unmap the SLB
        // entries; the HPTE was made by the stores (same page).
        flush_vmm_slb();
        let before = mm::stats();
        assert_eq!(call_planted(), 0x77, "the planted code ran");
        let after = mm::stats();
        assert!(after.instruction_segment > before.instruction_segment, "0x480 taken and resolved");
        gfree(a, 2 * PAGE);
    }

    fn instruction_fetch_from_no_execute_memory_is_a_kernel_fault() {
        let a = mm::with_aix(|x| x.vm_galloc(V_WORKING | vmm::aix::V_NOEXEC, PAGE as _)).expect("vm_galloc");
        plant_code(a);
        CODE_AT.store(a, Ordering::SeqCst);
        let before = mm::stats();
        assert!(crate::harness::panics_with(call_planted_ignoring_result, "NoExecute"), "fetch from V_NOEXEC memory panics");
        let after = mm::stats();
        assert_eq!(after.kernel_faults, before.kernel_faults + 1);
        assert!(after.isi + after.instruction_segment > before.isi + before.instruction_segment);
        gfree(a, PAGE);
    }
}

kernel_test! {
    fn probes_reach_live_memory_and_fail_once_it_is_freed() {
        // kread/kwrite's accesses: a vm_galloc page is read and written
        // (its first touch resolved as usual); once freed, the same
        // accesses fault on a missing segment and answer failure instead
        // of a kernel panic.
        let kaddr = mm::with_aix(|a| a.vm_galloc(V_WORKING, 4096)).expect("vm_galloc");
        // SAFETY: a live vm_galloc page, kernel read-write.
        unsafe {
            assert!(mm::probe::write(kaddr + 8, 0x5eed));
            assert_eq!(mm::probe::read(kaddr + 8), Some(0x5eed));
            assert_eq!(mm::probe::read(kaddr), Some(0));
        }
        let kernel_faults = mm::stats().kernel_faults;
        mm::with_aix(|a| a.vm_gfree(kaddr, 4096)).expect("vm_gfree");
        // SAFETY: unmapped now: the probes fault and fail; nothing else
        // uses the address.
        unsafe {
            assert_eq!(mm::probe::read(kaddr + 8), None);
            assert!(!mm::probe::write(kaddr + 8, 1));
        }
        assert_eq!(mm::stats().kernel_faults, kernel_faults, "no kernel fault counted");
    }
}
