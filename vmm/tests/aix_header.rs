//! Keeps the C header `vmm/include/sys/{vmuser,adspace}.h` in step with the
//! Rust side (`vmm::aix::abi`):
//!
//! * every `#define` constant and `extern` prototype of the header is in
//!   the Rust table, and every table entry is in the header;
//! * gcc compiles the header with `-std=c11 -Wall -Wextra -Werror` together
//!   with C generated from the table: a `_Static_assert` per constant and a
//!   redeclaration per prototype (a conflicting redeclaration is a C
//!   error), plus the layout of `adspace_t`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use vmm::aix::abi::{c_type, C_CONSTANTS, C_FUNCTIONS};

fn include_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include")
}

fn header_text() -> String {
    let dir = include_dir().join("sys");
    let mut text = String::new();
    for name in ["vmuser.h", "adspace.h"] {
        text.push_str(&std::fs::read_to_string(dir.join(name)).expect("header readable"));
        text.push('\n');
    }
    text
}

/// Object-like `#define NAME VALUE` lines whose value is an integer literal
/// (include guards and function-like macros are skipped).
fn header_constants(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("#define ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(name) = parts.next() else { continue };
        if name.contains('(') {
            continue;
        }
        let Some(value) = parts.next() else { continue };
        let digits = value.trim_end_matches(['U', 'L', 'u', 'l']);
        let parsed = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16)
        } else {
            digits.parse::<u64>()
        };
        let v =
            parsed.unwrap_or_else(|_| panic!("constant {name} has a non-literal value {value}"));
        assert!(
            out.insert(name.to_string(), v).is_none(),
            "{name} defined twice"
        );
    }
    out
}

/// A prototype reduced to `ret name(type, type)` with parameter names
/// dropped and spaces normalised, as `CFunction::c_prototype` renders it.
fn normalise_param(param: &str) -> String {
    let p = param.trim();
    if p == "void" {
        return String::new();
    }
    // Drop the trailing identifier (the parameter name).
    let name_start = p
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let ty = p[..name_start].trim();
    render_type(ty)
}

fn render_type(ty: &str) -> String {
    let stars = ty.matches('*').count();
    let base: Vec<&str> = ty
        .split(|c: char| c == '*' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    let base = base.join(" ");
    if stars == 0 {
        base
    } else {
        format!("{base} {}", "*".repeat(stars))
    }
}

fn header_prototypes(text: &str) -> BTreeMap<String, String> {
    // Join continuation lines: a declaration runs from `extern` to `;`.
    let mut out = BTreeMap::new();
    let mut pending: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(acc) = pending.as_mut() {
            acc.push(' ');
            acc.push_str(t);
        } else if t.starts_with("extern ") && !t.starts_with("extern \"C\"") {
            pending = Some(t.to_string());
        }
        if let Some(decl) = pending.clone() {
            if decl.ends_with(';') {
                pending = None;
                let decl = decl.trim_start_matches("extern ").trim_end_matches(';');
                let open = decl.find('(').expect("prototype has (");
                let close = decl.rfind(')').expect("prototype has )");
                let head = &decl[..open];
                let name_start = head
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(0, |i| i + 1);
                let name = head[name_start..].to_string();
                let ret = render_type(&head[..name_start]);
                let params: Vec<String> = decl[open + 1..close]
                    .split(',')
                    .map(normalise_param)
                    .filter(|p| !p.is_empty())
                    .collect();
                let params = if params.is_empty() {
                    "void".to_string()
                } else {
                    params.join(", ")
                };
                let proto = format!("{ret} {name}({params})");
                assert!(
                    out.insert(name.clone(), proto).is_none(),
                    "{name} declared twice"
                );
            }
        }
    }
    out
}

#[test]
fn header_constants_match_rust() {
    let header = header_constants(&header_text());
    let guards = ["VMM_SYS_VMUSER_H", "VMM_SYS_ADSPACE_H"];
    for c in C_CONSTANTS {
        assert_eq!(
            header.get(c.name),
            Some(&c.value),
            "constant {} differs or is missing",
            c.name
        );
    }
    for (name, value) in &header {
        if guards.contains(&name.as_str()) {
            continue;
        }
        assert!(
            C_CONSTANTS
                .iter()
                .any(|c| c.name == name && c.value == *value),
            "header constant {name} = {value:#x} is not in vmm::aix::abi::C_CONSTANTS"
        );
    }
}

#[test]
fn header_prototypes_match_rust() {
    let header = header_prototypes(&header_text());
    for f in C_FUNCTIONS {
        let want = f.c_prototype().replace("* ", "*");
        let got = header.get(f.name).map(|s| s.replace("* ", "*"));
        assert_eq!(
            got.as_deref(),
            Some(want.as_str()),
            "prototype of {}",
            f.name
        );
    }
    for name in header.keys() {
        assert!(
            C_FUNCTIONS.iter().any(|f| f.name == name),
            "header declares {name}, which vmm::aix::abi::C_FUNCTIONS lacks"
        );
    }
}

#[test]
fn gcc_checks_header_against_rust_table() {
    let mut c = String::from("#include <stddef.h>\n#include <sys/adspace.h>\n\n");
    for k in C_CONSTANTS {
        c.push_str(&format!(
            "_Static_assert((unsigned long long)({}) == {:#x}ULL, \"{} differs from Rust\");\n",
            k.name, k.value, k.name
        ));
    }
    for f in C_FUNCTIONS {
        c.push_str(&format!("extern {};\n", f.c_prototype()));
    }
    c.push_str(
        "_Static_assert(sizeof(adspace_t) == 136, \"adspace_t size\");\n\
         _Static_assert(offsetof(adspace_t, srval) == 8, \"adspace_t.srval\");\n\
         _Static_assert(ADSP_MASK(0) == 0x80000000U && ADSP_MASK(15) == 0x10000U, \"ADSP_MASK\");\n\
         _Static_assert(sizeof(vmhandle_t) == 8 && sizeof(vmid_t) == 8, \"handle types\");\n\
         _Static_assert((vmhandle_t)-1 > 0 && (vmsize_t)-1 < 0, \"signedness\");\n\
         int aix_header_check(void);\n\
         int aix_header_check(void) { return V_WORKING; }\n",
    );
    // Check the C types the table names exist with the right size too.
    for ty in ["vmkey_t", "vmsize_t", "ulong", "dev_t"] {
        c.push_str(&format!("_Static_assert(sizeof({ty}) == 8, \"{ty}\");\n"));
    }
    let dir = std::env::temp_dir().join(format!("vmm-aix-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("check.c");
    std::fs::write(&src, &c).unwrap();
    let out = Command::new("gcc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-c",
            "-o",
        ])
        .arg(dir.join("check.o"))
        .arg("-I")
        .arg(include_dir())
        .arg(&src)
        .output()
        .expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc rejected the header or the Rust table:\n{}\n--- generated C ---\n{c}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gcc_rejects_a_drifted_prototype() {
    // The check above is only worth something if gcc notices a mismatch.
    let c = "#include <sys/adspace.h>\nextern int vm_galloc(int, vmsize_t, long *);\n";
    let dir = std::env::temp_dir().join(format!("vmm-aix-header-neg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("neg.c");
    std::fs::write(&src, c).unwrap();
    let out = Command::new("gcc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(include_dir())
        .arg(&src)
        .output()
        .expect("gcc runs");
    assert!(
        !out.status.success(),
        "gcc accepted a conflicting prototype"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn c_type_rendering_matches_header_parsing() {
    assert_eq!(normalise_param("void **uaddr"), c_type("*mut *mut c_void"));
    assert_eq!(
        normalise_param("unsigned long long addr64"),
        c_type("c_ulonglong")
    );
    assert_eq!(normalise_param("adspace_t *adsp"), c_type("*mut adspace_t"));
}
