//! Device-tree facts read at boot, checked against what QEMU's pseries
//! machine builds (hw/ppc/spapr.c) and what qemu-run.sh asked for.

use crate::bootinfo::{self, SegmentPageSizes};

/// Parses a QEMU size like `512M`, `1G` or `536870912`.
fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        b'T' | b't' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    digits.parse::<u64>().ok()?.checked_shl(shift)
}

kernel_test! {
    fn ram_size_matches_the_command_line() {
        let info = bootinfo::get();
        let ram = info.ram_size();
        // spapr requires node memory in multiples of 256 MiB.
        assert!(ram >= 256 << 20, "RAM {ram:#x} below the 256 MiB minimum");
        assert_eq!(ram % (256 << 20), 0, "RAM {ram:#x} not a multiple of 256 MiB");
        // qemu-run.sh passes `-m SIZE` and `ram=SIZE` on the command line.
        if let Some(arg) = info.bootargs().split_ascii_whitespace().find_map(|w| w.strip_prefix("ram=")) {
            let expected = parse_size(arg).expect("ram= on the command line is a size");
            assert_eq!(ram, expected, "device tree RAM vs -m {arg}");
        }
    }

    fn memory_ranges_hold_the_kernel() {
        let info = bootinfo::get();
        let k = info.kernel;
        assert_eq!(k.base, 0x40_0000, "QEMU loads the kernel at kernel_addr 0x400000");
        assert!(
            info.memory.as_slice().iter().any(|r| r.base <= k.base && k.end() <= r.end()),
            "kernel {k:x?} outside RAM {:x?}",
            info.memory.as_slice()
        );
        // Firmware marks what it claimed (its own code, the kernel) as not
        // available: the kernel's first page must not be listed as free.
        for a in info.available.as_slice() {
            assert!(!(a.base <= k.base && k.base < a.end()), "kernel start listed as available");
        }
    }

    fn pft_size_is_ram_over_128() {
        let info = bootinfo::get();
        // On powernv the kernel sized its own table by the same rule.
        let shift = if crate::platform::is_powernv() {
            crate::mm::layout().hpt_ptegs.trailing_zeros() + 7
        } else {
            info.cpu.pft_size.expect("ibm,pft-size present").1
        };
        // spapr_hpt_shift_for_ramsize: log2(pow2ceil(RAM)) - 7, clamped to 18..=46.
        let ram_log2 = 64 - (info.ram_size() - 1).leading_zeros();
        let expected = (ram_log2 - 7).clamp(18, 46);
        assert_eq!(shift, expected, "HPT of 2^{shift} bytes for {} MiB RAM", info.ram_size() >> 20);
    }

    fn slb_size_is_32() {
        // QEMU reports 32 SLB entries for POWER7..POWER10 (ibm,slb-size).
        assert_eq!(bootinfo::get().cpu.slb_size, Some(32));
    }

    fn vty_reg_is_the_console() {
        super::pseries_only("pseries only: the vty (powernv writes through OPAL)");
        let info = bootinfo::get();
        let reg = info.vty_reg.expect("a vty under /vdevice");
        // spapr_vty devices sit at 0x71000000 + n.
        assert_eq!(reg & 0xff00_0000, 0x7100_0000, "vty reg {reg:#x}");
        assert_eq!(crate::console::termno(), reg, "console switched to the vty reg");
    }

    fn rtas_tokens_found() {
        super::pseries_only("pseries only: RTAS (powernv ends the run through OPAL)");
        let rtas = bootinfo::get().rtas;
        let power_off = rtas.power_off.expect("/rtas power-off");
        let os_term = rtas.os_term.expect("/rtas ibm,os-term");
        assert_ne!(power_off, os_term);
        // Found by walking /rtas with nextprop: at least the two above.
        assert!(rtas.properties >= 2, "/rtas has {} properties", rtas.properties);
        assert_ne!(power_off, 0);
        assert_ne!(os_term, 0);
    }

    fn pvr_matches_cpu_version() {
        let cpu = bootinfo::get().cpu;
        assert_eq!(cpu.cpu_version, Some(cpu.pvr), "cpu-version vs mfpvr");
        // POWER8 0x004d, POWER8E 0x004b, POWER8NVL 0x004c, POWER9 0x004e,
        // POWER10 0x0080 (PVR version field, upper 16 bits).
        let version = cpu.pvr >> 16;
        assert!(
            [0x004b, 0x004c, 0x004d, 0x004e, 0x0080].contains(&version),
            "unexpected PVR {:#x}",
            cpu.pvr
        );
    }

    fn segment_and_page_sizes_offer_4k_and_256m() {
        let cpu = bootinfo::get().cpu;
        let seg = &cpu.segment_sizes[..cpu.segment_sizes_len];
        assert!(seg.contains(&28), "256 MiB segments in {seg:?}");
        let sps = &cpu.segment_page_sizes[..cpu.segment_page_sizes_len];
        let four_k = SegmentPageSizes::new(sps)
            .find(|s| s.base_shift == 12)
            .expect("a 4 KiB base page size segment");
        // A 4K segment with a 4K page: SLB encoding 0 (L=0), HPTE encoding 0.
        assert_eq!(four_k.slb_encoding, 0);
        assert!(four_k.pages.chunks_exact(2).any(|p| p == [12, 0]), "{:?}", four_k.pages);
    }
}
