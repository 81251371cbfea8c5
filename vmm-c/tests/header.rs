//! `vmm/include/vmm.h` against the library: the header compiles as C11
//! and as C++17 with `-Wall -Wextra -Werror`, and a generated file of
//! static assertions checks that `struct vmm_platform` and
//! `struct vmm_fault_report` have the Rust structs' size and field offsets
//! and that the return codes have the Rust constants' values.

use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use vmm_c::{platform::VmmPlatform, VmmFaultReport};

macro_rules! offsets {
    ($ty:ty, $cty:literal; $($field:ident),* $(,)?) => {{
        let mut s = format!(
            "SA(sizeof(struct {}) == {}, \"size of {}\");\n",
            $cty,
            size_of::<$ty>(),
            $cty
        );
        $(
            writeln!(
                s,
                "SA(offsetof(struct {}, {}) == {}, \"{}.{}\");",
                $cty,
                stringify!($field),
                offset_of!($ty, $field),
                $cty,
                stringify!($field)
            )
            .unwrap();
        )*
        s
    }};
}

fn checks() -> String {
    let mut c = String::from(
        "#include <stddef.h>\n#include <vmm.h>\n\
         #ifdef __cplusplus\n#define SA static_assert\n#else\n#define SA _Static_assert\n#endif\n",
    );
    c += &offsets!(VmmPlatform, "vmm_platform";
        ctx, hpt_ptegs, hpt_table, tlb_invalidate, hpt_insert, hpt_remove, hpt_protect, hpt_read, slb_entries,
        slb_index_base, slb_load, slb_read, slb_invalidate, slb_invalidate_from, frame_alloc,
        frame_free, frame_share, frame_sharers, frame_zero, frame_copy, frame_free_count, heap,
        heap_size, log, abort);
    c += &offsets!(VmmFaultReport, "vmm_fault_report"; ea, reason, access);
    for (name, value) in [
        ("VMM_OK", vmm_c::VMM_OK),
        ("VMM_EINVAL", vmm_c::VMM_EINVAL),
        ("VMM_ENOMEM", vmm_c::VMM_ENOMEM),
        ("VMM_EBUSY", vmm_c::VMM_EBUSY),
        ("VMM_ENOTINIT", vmm_c::VMM_ENOTINIT),
        ("VMM_EEXIST", vmm_c::VMM_EEXIST),
        ("VMM_ENOENT", vmm_c::VMM_ENOENT),
        ("VMM_EPLATFORM", vmm_c::VMM_EPLATFORM),
        ("VMM_RESOLVED", vmm_c::VMM_RESOLVED),
        ("VMM_FAULT", vmm_c::VMM_FAULT),
    ] {
        writeln!(c, "SA({name} == {value}, \"{name}\");").unwrap();
    }
    c += "int main(void) { return 0; }\n";
    c
}

fn compile(tag: &str, compiler: &str, std: &str, ext: &str, source: &str) -> std::process::Output {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vmm-h");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{tag}-{}.{ext}", std.trim_start_matches("-std=")));
    std::fs::write(&file, source).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vmm/include");
    Command::new(compiler)
        .args([
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-I",
        ])
        .arg(include)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{compiler} runs: {e}"))
}

#[test]
fn vmm_h_matches_the_library_as_c11_and_cxx17() {
    let src = checks();
    for (compiler, std, ext) in [("gcc", "-std=c11", "c"), ("g++", "-std=c++17", "cpp")] {
        let out = compile("layout", compiler, std, ext, &src);
        assert!(
            out.status.success(),
            "{compiler} {std} rejected vmm.h or its layout:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_wrong_offset_is_caught() {
    // The assertions can fail: one off by eight is rejected.
    let src = checks().replace(
        &format!(
            "offsetof(struct vmm_platform, heap) == {}",
            offset_of!(VmmPlatform, heap)
        ),
        &format!(
            "offsetof(struct vmm_platform, heap) == {}",
            offset_of!(VmmPlatform, heap) + 8
        ),
    );
    let out = compile("wrong-offset", "gcc", "-std=c11", "c", &src);
    assert!(!out.status.success(), "a wrong offset compiled");
}
