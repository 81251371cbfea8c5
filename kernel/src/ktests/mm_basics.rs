//! Translation is on over the bolted linear map: MSR, the SLB entries at
//! the lowest indexes, the bolted HPTEs in the VMM's table, and
//! the same bytes seen in real mode and through the map.

use arch_ppc64::addr::{EffectiveAddress, PtegIndex};
use arch_ppc64::instructions::slb;
use arch_ppc64::registers::msr::{self, Msr};
use arch_ppc64::structures::hpte;
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::platform::HptBackend;

use crate::bootinfo::{real_to_virt, virt_to_real, KERNEL_VIRT_BASE};
use crate::mm::{self, linear};

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
        let map = l.linear.expect("mm::init built the linear map");
        assert!(l.linear_slb_entries >= 1);
        assert_eq!(l.linear_slb_entries, map.slb_entries);
        assert_eq!(l.slb_size, crate::bootinfo::get().cpu.slb_size.unwrap() as usize);
        let ssize = if l.one_tb_segments { SegmentSize::T1 } else { SegmentSize::M256 };
        assert_eq!(map.ssize, ssize);
        for n in 0..l.linear_slb_entries {
            let want = map.slb_entry(n);
            let e = slb::read_entry(n);
            assert!(e.is_valid(), "SLB[{n}] valid");
            assert_eq!(e.vsid_word, want.vsid_word, "SLB[{n}] VSID word (Kp=1, Ks=0, {} base pages)", map.psize);
            assert_eq!(e.page_size(), Some(map.psize), "SLB[{n}] L||LP");
            assert_eq!(e.esid(), want.esid(), "SLB[{n}] ESID");
            assert!(e.matches(EffectiveAddress::new(KERNEL_VIRT_BASE + ((n as u64) << ssize.shift()))));
        }
        // The VMM sees the rest.
        let vmm_slots = mm::with_vmm(|v| v.slb().size());
        assert_eq!(vmm_slots, l.slb_size - l.linear_slb_entries);
    }

    fn kernel_text_and_stack_have_bolted_hptes() {
        let l = mm::layout();
        let map = l.linear.expect("mm::init built the linear map");
        // The VMM's own backend: the hypervisor's table on pseries, the
        // kernel's on powernv.
        let read = |ptex| mm::with_vmm(|v| v.hpt_backend().read(ptex));
        let mask = mm::with_vmm(|v| v.hpt_backend().pteg_count()) - 1;
        let stack_var = 0u64;
        // The last page of RAM too: the map reaches the end.
        let info = crate::bootinfo::get();
        let top = real_to_virt(info.memory.as_slice().iter().map(|r| r.end()).max().unwrap() - 8);
        for va in [code_address(kernel_text_and_stack_have_bolted_hptes), &raw const stack_var as u64, top] {
            let pa = virt_to_real(va) & !map.psize.offset_mask();
            let want = map.hpte_for(pa);
            let hash = vmm::hpt::hash(linear::vsid_for(va, map.ssize), va, map.ssize, map.psize);
            assert_eq!(hash, map.hash(va));
            let mut found = None;
            for (g, sec) in [(hash & mask, false), (!hash & mask, true)] {
                for slot in 0..8 {
                    let e = read(PtegIndex::new(g).ptex(slot)).unwrap();
                    if e.is_valid() && e.matches(want.avpn_word() | hpte::v::V | if sec { hpte::v::H } else { 0 }) {
                        found = Some(e);
                    }
                }
            }
            let e = found.unwrap_or_else(|| panic!("no HPTE for {va:#x}"));
            assert!(e.is_bolted(), "bolted");
            assert_eq!(e.real_address().map(|p| p.as_u64()), Some(pa));
            assert_eq!(e.page_size(), Some(map.psize));
            assert_eq!(e.r & 0x78, hpte::r::M, "WIMG = M");
            assert!(e.referenced(), "R set (by the insert, or the MMU since)");
        }
        // SAFETY: the last doubleword of RAM, mapped by the linear map; only read.
        let _ = unsafe { (top as *const u64).read_volatile() };
        assert_eq!(l.linear_hptes, info.ram_size() >> map.psize.shift());
        assert_eq!(map.hptes, l.linear_hptes);
    }

    fn linear_map_uses_16m_pages_exactly_when_the_device_tree_offers_them() {
        let info = crate::bootinfo::get();
        let map = mm::layout().linear.expect("mm::init built the linear map");
        let offered = linear::offers_16m(info.segment_page_sizes());
        // QEMU's RAM is whole 256 MiB blocks, so 16M pages always fit.
        assert_eq!(map.psize, if offered { PageSize::M16 } else { PageSize::K64 });
        // qemu-run.sh passes the machine's cap-hpt-max-page-size as
        // `hpt-max-page=`: the device tree must follow it.
        if let Some(arg) = info.bootargs().split_ascii_whitespace().find_map(|w| w.strip_prefix("hpt-max-page=")) {
            match arg {
                "16M" => assert!(offered, "cap-hpt-max-page-size=16M but no 16M base pages in {info}"),
                "64K" => {
                    assert!(!offered, "cap-hpt-max-page-size=64K yet 16M offered");
                    assert!(
                        info.segment_page_sizes().all(|s| s.pages.chunks_exact(2).all(|p| p[0] <= 16)),
                        "no page above 64K at all: {info}"
                    );
                }
                other => panic!("hpt-max-page={other}: qemu-run.sh passes 64K or 16M"),
            }
        }
    }

    fn linear_page_size_choice_follows_the_device_tree_and_memory() {
        use crate::bootinfo::{PhysRange, SegmentPageSizes};
        // ibm,segment-page-sizes as QEMU 7.2 publishes it for POWER9 with
        // cap-hpt-max-page-size=64K (the default) and =16M:
        // (base shift, SLB L||LP, count, (shift, HPTE LP)*count)*.
        let cap_64k: &[u32] = &[12, 0x000, 1, 12, 0x0, 16, 0x110, 1, 16, 0x1];
        let cap_16m: &[u32] = &[
            12, 0x000, 2, 12, 0x0, 24, 0x38,
            16, 0x110, 2, 16, 0x1, 24, 0x8,
            24, 0x100, 1, 24, 0x0,
        ];
        // 16M only inside 4K and 64K segments (no 16M base): not usable.
        let mpss_only: &[u32] = &[12, 0x000, 2, 12, 0x0, 24, 0x38, 16, 0x110, 2, 16, 0x1, 24, 0x8];
        // A 16M base size with encodings other than arch-ppc64 writes.
        let other_slb: &[u32] = &[24, 0x120, 1, 24, 0x0];
        let other_lp: &[u32] = &[24, 0x100, 1, 24, 0x3];
        // The 16M entry cut short (count says 2 pairs, one is there).
        let truncated: &[u32] = &[16, 0x110, 1, 16, 0x1, 24, 0x100, 2, 24, 0x0];
        let ram = |base: u64, size: u64| PhysRange { base, size };
        let gib16 = [ram(0, 16 << 30)];
        let choose = |cells: &[u32], mem: &[PhysRange]| linear::choose_page_size(SegmentPageSizes::new(cells), mem);
        assert_eq!(choose(cap_16m, &gib16), PageSize::M16);
        assert_eq!(choose(cap_16m, &[ram(0, 256 << 20), ram(1 << 32, 512 << 20)]), PageSize::M16);
        assert_eq!(choose(cap_64k, &gib16), PageSize::K64);
        assert_eq!(choose(mpss_only, &gib16), PageSize::K64);
        assert_eq!(choose(other_slb, &gib16), PageSize::K64);
        assert_eq!(choose(other_lp, &gib16), PageSize::K64);
        assert_eq!(choose(truncated, &gib16), PageSize::K64);
        assert_eq!(choose(&[], &gib16), PageSize::K64);
        // Memory a 16M page would overrun or start inside.
        assert_eq!(choose(cap_16m, &[ram(0, (16 << 30) + (64 << 10))]), PageSize::K64);
        assert_eq!(choose(cap_16m, &[ram(0, 256 << 20), ram((1 << 32) + (64 << 10), 16 << 20)]), PageSize::K64);
        assert!(linear::offers_16m(SegmentPageSizes::new(cap_16m)));
        assert!(!linear::offers_16m(SegmentPageSizes::new(cap_64k)));
    }
}
