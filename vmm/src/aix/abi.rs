//! The table of the C interface: every constant and every function the
//! header `vmm/include/sys/{vmuser,adspace,seg}.h` declares, as the Rust side
//! defines them.
//!
//! The test `vmm/tests/aix_header.rs` turns this table into C
//! (`_Static_assert`s on the constants, redeclarations of the prototypes)
//! and compiles it against the header, and checks that the header declares
//! nothing the table lacks. With feature `c-abi` the table is also checked
//! at compile time against the exported functions' real types, so header,
//! table and exports cannot drift apart silently.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::consts::*;

/// A constant of the C header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CConstant {
    /// The macro name.
    pub name: &'static str,
    /// The value's bit pattern, zero-extended from the constant's width.
    pub value: u64,
}

/// A function of the C header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CFunction {
    /// The symbol name.
    pub name: &'static str,
    /// The parameter types as written in Rust (`*mut ulong`, `c_int`, ...).
    pub params: &'static [&'static str],
    /// The return type as written in Rust, `None` for `void`.
    pub ret: Option<&'static str>,
}

/// The C spelling of a Rust type name used in the table: `c_int` → `int`,
/// `*mut *mut c_void` → `void **`; AIX type aliases keep their names.
pub fn c_type(rust: &str) -> String {
    let mut rest = rust.trim();
    let mut stars = 0;
    // `stringify!` of a type writes `* mut T`; the table may say `*mut T`.
    while let Some(r) = rest.strip_prefix('*') {
        let r = r.trim_start();
        if let Some(r) = r.strip_prefix("mut").or_else(|| r.strip_prefix("const")) {
            rest = r.trim_start();
        } else {
            break;
        }
        stars += 1;
    }
    let base = match rest {
        "c_int" => "int",
        "c_long" => "long",
        "c_ulonglong" => "unsigned long long",
        "c_void" => "void",
        other => other,
    };
    if stars == 0 {
        String::from(base)
    } else {
        format!("{base} {}", "*".repeat(stars))
    }
}

impl CFunction {
    /// The C prototype, without parameter names:
    /// `int vm_galloc(int, vmsize_t, ulong *)`.
    pub fn c_prototype(&self) -> String {
        let ret = self.ret.map_or(String::from("void"), c_type);
        let params: Vec<String> = self.params.iter().map(|p| c_type(p)).collect();
        let params = if params.is_empty() {
            String::from("void")
        } else {
            params.join(", ")
        };
        format!("{ret} {}({params})", self.name)
    }
}

/// Builds [`C_FUNCTIONS`] from the service table (plus `vmm_errno`) and,
/// with `c-abi`, checks each entry against the exported function's type.
macro_rules! c_functions {
    ($(
        $nr:literal $variant:ident $env:ident
        fn $name:ident ( $($p:ident : $pty:ty),* ) -> $ret:ty | $err:ty
        => $kind:ident ( $($out:ident)? ) fn ( $($cp:ident : $cty:ty),* ) $(-> $cret:ty)?
        = ( $($arg:expr),* );
    )*) => {
        /// Every function of the C interface.
        pub const C_FUNCTIONS: &[CFunction] = &[
            $( CFunction {
                name: stringify!($name),
                params: &[$(stringify!($cty)),*],
                ret: c_functions!(@ret $($cret)?),
            }, )*
            CFunction {
                name: "vmm_errno",
                params: &[],
                ret: Some("c_int"),
            },
        ];

        #[cfg(feature = "c-abi")]
        #[allow(unused_imports)]
        const _: () = {
            use super::ctypes::*;
            use super::segregs::adspace_t;
            use core::ffi::{c_int, c_long, c_ulonglong, c_void};
            $( let _: unsafe extern "C" fn($($cty),*) $(-> $cret)? = super::cabi::$name; )*
            let _: unsafe extern "C" fn() -> c_int = super::cabi::vmm_errno;
        };
    };
    (@ret $ret:ty) => { Some(stringify!($ret)) };
    (@ret) => { None };
}

crate::aix_service_table!(c_functions);

/// Every constant of the C header.
pub const C_CONSTANTS: &[CConstant] = &[
    CConstant {
        name: "V_WORKING",
        value: V_WORKING as u64,
    },
    CConstant {
        name: "V_SYSTEM",
        value: V_SYSTEM as u64,
    },
    CConstant {
        name: "V_UREAD",
        value: V_UREAD as u64,
    },
    CConstant {
        name: "V_NOEXEC",
        value: V_NOEXEC as u32 as u64,
    },
    CConstant {
        name: "VU_ANYWHERE",
        value: VU_ANYWHERE as u64,
    },
    CConstant {
        name: "VM_PRIV",
        value: VM_PRIV as u64,
    },
    CConstant {
        name: "VM_UNPRIV",
        value: VM_UNPRIV as u64,
    },
    CConstant {
        name: "EINVAL",
        value: EINVAL as u64,
    },
    CConstant {
        name: "ENOMEM",
        value: ENOMEM as u64,
    },
    CConstant {
        name: "ENOSPC",
        value: ENOSPC as u64,
    },
    CConstant {
        name: "SEGSHIFT",
        value: SEGSHIFT as u64,
    },
    CConstant {
        name: "SEGSIZE",
        value: SEGSIZE,
    },
    CConstant {
        name: "SEGOFFSET",
        value: SEGOFFSET,
    },
    CConstant {
        name: "NSEGS",
        value: NSEGS as u64,
    },
    CConstant {
        name: "PAGESIZE",
        value: PAGESIZE,
    },
    CConstant {
        name: "L2SIDLIMIT",
        value: L2SIDLIMIT as u64,
    },
    CConstant {
        name: "SIDMAX",
        value: SIDMAX,
    },
    CConstant {
        name: "INVLSID",
        value: INVLSID,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_type_spelling() {
        assert_eq!(c_type("c_int"), "int");
        assert_eq!(c_type("*mut ulong"), "ulong *");
        assert_eq!(c_type("*mut *mut c_void"), "void **");
        assert_eq!(c_type("* mut * mut c_void"), "void **");
        assert_eq!(c_type("c_ulonglong"), "unsigned long long");
        assert_eq!(c_type("vmhandle_t"), "vmhandle_t");
    }

    #[test]
    fn prototypes_render() {
        let f = C_FUNCTIONS.iter().find(|f| f.name == "vm_galloc").unwrap();
        assert_eq!(f.c_prototype(), "int vm_galloc(int, vmsize_t, ulong *)");
        let f = C_FUNCTIONS.iter().find(|f| f.name == "getadsp").unwrap();
        assert_eq!(f.c_prototype(), "adspace_t * getadsp(void)");
        let f = C_FUNCTIONS.iter().find(|f| f.name == "vm_det").unwrap();
        assert_eq!(f.c_prototype(), "void vm_det(caddr_t)");
    }

    #[test]
    fn names_are_unique() {
        for (i, f) in C_FUNCTIONS.iter().enumerate() {
            assert!(C_FUNCTIONS[i + 1..].iter().all(|g| g.name != f.name));
        }
        for (i, c) in C_CONSTANTS.iter().enumerate() {
            assert!(C_CONSTANTS[i + 1..].iter().all(|d| d.name != c.name));
        }
    }
}
