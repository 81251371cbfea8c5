//! Translation is on over the bolted linear map: MSR, the SLB entries at
//! the lowest indexes, the bolted HPTEs in the hypervisor's table, and
//! the same bytes seen in real mode and through the map.

use arch_ppc64::addr::{EffectiveAddress, PtegIndex};
use arch_ppc64::instructions::slb;
use arch_ppc64::registers::msr::{self, Msr};
use arch_ppc64::structures::hpte;
use vmm::platform::HptBackend;

use crate::bootinfo::{real_to_virt, virt_to_real, KERNEL_VIRT_BASE};
use crate::mm::{self, linear, PaprHpt};

/// The HPT as a second handle (PaprHpt holds only the size).
fn hpt() -> PaprHpt {
    let shift = crate::bootinfo::get().cpu.pft_size.expect("ibm,pft-size").1;
    PaprHpt::new(shift).expect("HPT size")
}

/// The entry point of `f` (ELFv1: the first word of its descriptor).
fn code_address(f: fn()) -> u64 {
    // SAFETY: an ELFv1 function pointer points at its descriptor, whose
    // first doubleword is the code address.
    unsafe { (f as *const () as *const u64).read() }
}

kernel_test! {
    fn translation_is_on_for_the_kernel() {
        let m = msr::read();
        assert!(m.contains(Msr::IR | Msr::DR), "MSR {:#x}", m.bits());
        assert!(mm::translation_on());
        assert!(mm::is_initialised());
        // The code running this test is at its link address.
        let pc = code_address(translation_is_on_for_the_kernel);
        assert!(pc >= KERNEL_VIRT_BASE, "code at {pc:#x}");
    }

    fn linear_map_reads_back_what_real_mode_wrote() {
        let f = crate::frame::allocate().expect("a frame");
        let pa = f.start_address();
        let va = real_to_virt(pa) as *mut u64;
        // Write with data translation off (real mode: the top address bits
        // are ignored, so the kernel address reaches real address `pa`).
        // SAFETY: only this frame is written while DR = 0; instruction
        // fetch stays translated (IR = 1) on the bolted linear map and the
        // asm touches no stack.
        unsafe {
            core::arch::asm!(
                "mfmsr {old}",
                "andc {t}, {old}, {dr}",
                "mtmsrd {t}",
                "isync",
                "std {a}, 0({p})",
                "std {b}, 8({p})",
                "mtmsrd {old}",
                "isync",
                old = out(reg) _,
                t = out(reg) _,
                dr = in(reg) Msr::DR.bits(),
                p = in(reg_nonzero) va,
                a = in(reg) 0x1122_3344_5566_7788u64,
                b = in(reg) !pa,
            );
        }
        // SAFETY: the frame is ours and mapped by the linear map.
        let (a, b) = unsafe { (va.read_volatile(), va.add(1).read_volatile()) };
        crate::frame::deallocate(f).unwrap();
        assert_eq!(a, 0x1122_3344_5566_7788);
        assert_eq!(b, !pa);
        assert_eq!(virt_to_real(va as u64), pa);
    }

    fn bolted_slb_entries_map_the_linear_segments() {
        let l = mm::layout();
        assert!(l.linear_slb_entries >= 1);
        assert_eq!(l.slb_size, crate::bootinfo::get().cpu.slb_size.unwrap() as usize);
        for n in 0..l.linear_slb_entries {
            let ssize = if l.one_tb_segments {
                arch_ppc64::structures::SegmentSize::T1
            } else {
                arch_ppc64::structures::SegmentSize::M256
            };
            let want = linear::slb_entry(n, ssize);
            let e = slb::read_entry(n);
            assert!(e.is_valid(), "SLB[{n}] valid");
            assert_eq!(e.vsid_word, want.vsid_word, "SLB[{n}] VSID word (Kp=1, Ks=0, 64K)");
            assert_eq!(e.esid(), want.esid(), "SLB[{n}] ESID");
            assert!(e.matches(EffectiveAddress::new(KERNEL_VIRT_BASE + ((n as u64) << ssize.shift()))));
        }
        // The VMM sees the rest.
        let vmm_slots = mm::with_vmm(|v| v.slb().size());
        assert_eq!(vmm_slots, l.slb_size - l.linear_slb_entries);
    }

    fn kernel_text_and_stack_have_bolted_hptes() {
        let l = mm::layout();
        let ssize = if l.one_tb_segments {
            arch_ppc64::structures::SegmentSize::T1
        } else {
            arch_ppc64::structures::SegmentSize::M256
        };
        let h = hpt();
        let mask = h.pteg_count() - 1;
        let stack_var = 0u64;
        for va in [code_address(kernel_text_and_stack_have_bolted_hptes), &raw const stack_var as u64] {
            let pa = virt_to_real(va) & !0xffff;
            let want = linear::hpte_for(pa, ssize);
            let hash = vmm::hpt::hash(linear::vsid_for(va, ssize), va, ssize, linear::LINEAR_PAGE);
            let mut found = None;
            for (g, sec) in [(hash & mask, false), (!hash & mask, true)] {
                for slot in 0..8 {
                    let e = h.read(PtegIndex::new(g).ptex(slot)).unwrap();
                    if e.is_valid() && e.matches(want.avpn_word() | hpte::v::V | if sec { hpte::v::H } else { 0 }) {
                        found = Some(e);
                    }
                }
            }
            let e = found.unwrap_or_else(|| panic!("no HPTE for {va:#x}"));
            assert!(e.is_bolted(), "bolted");
            assert_eq!(e.real_address().map(|p| p.as_u64()), Some(pa));
            assert_eq!(e.page_size(), Some(arch_ppc64::structures::PageSize::K64));
            assert_eq!(e.r & 0x78, hpte::r::M, "WIMG = M");
            assert!(e.referenced(), "R set: the kernel used the page");
        }
        assert_eq!(l.linear_hptes, crate::bootinfo::get().ram_size() >> 16);
    }
}
