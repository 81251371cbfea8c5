//! Keeps the C header `vmm/include/sys/{vmuser,adspace,seg}.h` in step with
//! the Rust side (`vmm::aix::abi`):
//!
//! * every `#define` constant and `extern` prototype of the header is in
//!   the Rust table, and every table entry is in the header;
//! * gcc compiles the header with `-std=c11 -Wall -Wextra -Werror` together
//!   with C generated from the table: a `_Static_assert` per constant and a
//!   redeclaration per prototype (a conflicting redeclaration is a C
//!   error), plus the layout of `adspace_t`;
//! * g++ compiles the same checks as C++17 (`static_assert`, the
//!   redeclarations inside `extern "C"`), so a C++ kernel extension can
//!   include the header;
//! * `<sys/seg.h>` alone gives `INVLSID`, and including it before or after
//!   `<sys/vmuser.h>` redefines nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use vmm::aix::abi::{c_type, C_CONSTANTS, C_FUNCTIONS};
use vmm::aix::INVLSID;

fn include_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include")
}

fn header_text() -> String {
    let dir = include_dir().join("sys");
    let mut text = String::new();
    for name in ["vmuser.h", "adspace.h", "seg.h"] {
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
    let guards = ["VMM_SYS_VMUSER_H", "VMM_SYS_ADSPACE_H", "VMM_SYS_SEG_H"];
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

/// The language a generated check is compiled as.
#[derive(Clone, Copy)]
enum Lang {
    C11,
    Cxx17,
}

impl Lang {
    fn compiler(self) -> &'static str {
        match self {
            Lang::C11 => "gcc",
            Lang::Cxx17 => "g++",
        }
    }
    fn std(self) -> &'static str {
        match self {
            Lang::C11 => "-std=c11",
            Lang::Cxx17 => "-std=c++17",
        }
    }
    fn extension(self) -> &'static str {
        match self {
            Lang::C11 => "c",
            Lang::Cxx17 => "cpp",
        }
    }
    fn static_assert(self) -> &'static str {
        match self {
            Lang::C11 => "_Static_assert",
            Lang::Cxx17 => "static_assert",
        }
    }
}

/// Compiles `source` to an object file with every warning an error; the
/// compiler's stderr on failure.
fn compile(lang: Lang, tag: &str, source: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("vmm-aix-header-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("check.{}", lang.extension()));
    std::fs::write(&src, source).unwrap();
    let out = Command::new(lang.compiler())
        .args([
            lang.std(),
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
        .unwrap_or_else(|e| panic!("{} runs: {e}", lang.compiler()));
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The header plus an assertion per constant of the Rust table, a
/// redeclaration per function, and the layout of `adspace_t`, in `lang`.
fn table_check_source(lang: Lang) -> String {
    let sa = lang.static_assert();
    let mut c = String::from("#include <stddef.h>\n#include <sys/adspace.h>\n\n");
    for k in C_CONSTANTS {
        c.push_str(&format!(
            "{sa}((unsigned long long)({}) == {:#x}ULL, \"{} differs from Rust\");\n",
            k.name, k.value, k.name
        ));
    }
    if let Lang::Cxx17 = lang {
        c.push_str("extern \"C\" {\n");
    }
    for f in C_FUNCTIONS {
        c.push_str(&format!("extern {};\n", f.c_prototype()));
    }
    if let Lang::Cxx17 = lang {
        c.push_str("}\n");
    }
    c.push_str(&format!(
        "{sa}(sizeof(adspace_t) == 136, \"adspace_t size\");\n\
         {sa}(offsetof(adspace_t, srval) == 8, \"adspace_t.srval\");\n\
         {sa}(ADSP_MASK(0) == 0x80000000U && ADSP_MASK(15) == 0x10000U, \"ADSP_MASK\");\n\
         {sa}(sizeof(vmhandle_t) == 8 && sizeof(vmid_t) == 8, \"handle types\");\n\
         {sa}((vmhandle_t)-1 > 0 && (vmsize_t)-1 < 0, \"signedness\");\n\
         int aix_header_check(void);\n\
         int aix_header_check(void) {{ return V_WORKING; }}\n",
    ));
    // Check the C types the table names exist with the right size too.
    for ty in ["vmkey_t", "vmsize_t", "ulong", "dev_t"] {
        c.push_str(&format!("{sa}(sizeof({ty}) == 8, \"{ty}\");\n"));
    }
    c
}

#[test]
fn gcc_checks_header_against_rust_table() {
    let c = table_check_source(Lang::C11);
    if let Err(e) = compile(Lang::C11, "c11", &c) {
        panic!("gcc rejected the header or the Rust table:\n{e}\n--- generated C ---\n{c}");
    }
}

#[test]
fn gxx_compiles_header_as_cxx17() {
    let c = table_check_source(Lang::Cxx17);
    if let Err(e) = compile(Lang::Cxx17, "cxx17", &c) {
        panic!("g++ -std=c++17 rejected the header or the Rust table:\n{e}\n--- generated C++ ---\n{c}");
    }
}

#[test]
fn gxx_rejects_a_drifted_prototype() {
    // The C++ check is only worth something if g++ notices a mismatch of
    // an extern "C" function too.
    let c = "#include <sys/adspace.h>\nextern \"C\" int vm_galloc(int, vmsize_t, long *);\n";
    assert!(
        compile(Lang::Cxx17, "cxx-neg", c).is_err(),
        "g++ accepted a conflicting prototype"
    );
}

#[test]
fn seg_h_alone_gives_invlsid() {
    for lang in [Lang::C11, Lang::Cxx17] {
        let sa = lang.static_assert();
        let c = format!(
            "#include <sys/seg.h>\n\
             {sa}(INVLSID == {INVLSID:#x}ULL, \"INVLSID\");\n\
             {sa}(SEGSIZE == 1UL << SEGSHIFT, \"SEGSIZE\");\n\
             unsigned long invalid_handle(void);\n\
             unsigned long invalid_handle(void) {{ return INVLSID; }}\n"
        );
        if let Err(e) = compile(lang, "seg-alone", &c) {
            panic!("{} rejected sys/seg.h alone:\n{e}\n{c}", lang.compiler());
        }
    }
}

#[test]
fn seg_h_and_vmuser_h_include_in_either_order() {
    for lang in [Lang::C11, Lang::Cxx17] {
        let sa = lang.static_assert();
        for (first, second) in [("seg.h", "adspace.h"), ("vmuser.h", "seg.h")] {
            let c = format!(
                "#include <sys/{first}>\n#include <sys/{second}>\n#include <sys/seg.h>\n\
                 {sa}(INVLSID == {INVLSID:#x}ULL, \"INVLSID\");\n\
                 vmhandle_t invalid_handle(void);\n\
                 vmhandle_t invalid_handle(void) {{ return INVLSID; }}\n"
            );
            if let Err(e) = compile(lang, "seg-order", &c) {
                panic!(
                    "{}: <sys/{first}> then <sys/{second}> failed:\n{e}\n{c}",
                    lang.compiler()
                );
            }
        }
    }
}

#[test]
fn invlsid_is_defined_in_seg_h_only() {
    // One definition: a second #define elsewhere (even an equal one) would
    // be the start of two values drifting apart.
    let dir = include_dir().join("sys");
    for name in ["vmuser.h", "adspace.h", "seg.h"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let defines = header_constants(&text);
        assert_eq!(
            defines.contains_key("INVLSID"),
            name == "seg.h",
            "INVLSID defined in {name}"
        );
    }
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
