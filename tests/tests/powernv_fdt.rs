//! The flattened device tree reader (`arch_ppc64::fdt`) on the trees QEMU
//! builds for its powernv machines (before skiboot adds its own nodes):
//! what a powernv kernel needs from them — memory, processors, cache
//! block size, SLB size, page sizes — reads back as the QEMU command line
//! asked for.

use std::process::Command;

use arch_ppc64::fdt::{reg_pairs, Fdt};

/// QEMU's tree for `machine` with `cpus` processors and `mem_gib` GiB.
fn dump(machine: &str, cpu: &str, cpus: u32, mem_gib: u64) -> Vec<u8> {
    let path =
        std::env::temp_dir().join(format!("vmm-{machine}-{cpus}-{}.dtb", std::process::id()));
    let out = Command::new("qemu-system-ppc64")
        .args(["-M", &format!("{machine},dumpdtb={}", path.display())])
        .args(["-cpu", cpu, "-m", &format!("{mem_gib}G")])
        .args(["-smp", &cpus.to_string(), "-nographic", "-nodefaults"])
        .output()
        .expect("qemu-system-ppc64 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blob = std::fs::read(&path).expect("dtb written");
    let _ = std::fs::remove_file(&path);
    blob
}

#[test]
fn powernv_device_trees_read_back_what_qemu_was_asked_for() {
    for (machine, cpu) in [
        ("powernv8", "POWER8"),
        ("powernv9", "POWER9"),
        ("powernv10", "POWER10"),
    ] {
        let blob = dump(machine, cpu, 2, 2);
        let fdt = Fdt::new(&blob).unwrap_or_else(|e| panic!("{machine}: {e:?}"));
        let root = fdt.root().expect("root");
        let compatible = root.property("compatible").expect("compatible");
        assert!(
            compatible.value.windows(7).any(|w| w == b"powernv"),
            "{machine}: {compatible:?}"
        );
        // Memory: the -m size, in the root's cells.
        let total: u64 = root
            .children()
            .filter(|n| n.base_name() == "memory")
            .flat_map(|n| reg_pairs(n.property("reg").expect("reg"), root.cell_sizes()))
            .map(|(_, size)| size)
            .sum();
        assert_eq!(total, 2 << 30, "{machine}");
        // Processors: one node per -smp core, each a cpu with the block
        // size dcbz needs, an SLB size and a page-size table.
        let cpus = fdt.find("/cpus").expect("/cpus");
        let nodes: Vec<_> = cpus
            .children()
            .filter(|c| c.property("device_type").and_then(|p| p.as_str()) == Some("cpu"))
            .collect();
        assert_eq!(nodes.len(), 2, "{machine}");
        let mut regs = Vec::new();
        for n in &nodes {
            let get = |name| n.property(name).and_then(|p| p.as_u32());
            assert_eq!(
                get("d-cache-block-size"),
                Some(128),
                "{machine} {}",
                n.name()
            );
            assert_eq!(get("ibm,slb-size"), Some(32), "{machine} {}", n.name());
            let sizes: Vec<u32> = n
                .property("ibm,segment-page-sizes")
                .expect("ibm,segment-page-sizes")
                .cells()
                .collect();
            // The first entry is the 4K base page size (shift 12).
            assert_eq!(sizes.first(), Some(&12), "{machine}");
            let servers = n
                .property("ibm,ppc-interrupt-server#s")
                .expect("servers")
                .cells()
                .count();
            assert!(servers >= 1, "{machine}");
            regs.push(get("reg").expect("reg"));
        }
        // The header names one of them as the boot processor — except in
        // QEMU's powernv8 tree, whose header says 0 while its cores are at
        // 8 and 16 (the tree skiboot passes on is the one a kernel reads).
        if machine != "powernv8" {
            assert!(regs.contains(&fdt.boot_cpuid()), "{machine}: {regs:?}");
        }
    }
}
