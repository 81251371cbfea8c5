//! Typed errors of the AIX services.
//!
//! Each service's error is declared beside the service, in its family's
//! module under `services/`, and re-exported here. Each service has its own small enum whose variants carry the value that
//! was refused (the style of seL4's and riscv's Rust error types). They
//! become AIX errno values only at the C boundary, through `errno()`; so
//! does [`super::ProcessError`] at a kernel's system call boundary.

use super::consts::{EINVAL, ENOMEM, ENOSPC};
use core::ffi::c_int;

/// The AIX errno values the services return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Errno {
    /// `EINVAL` (22): a bad argument, or a call from the wrong environment.
    Inval = EINVAL,
    /// `ENOMEM` (12): out of frames, SIDs, metadata or regions.
    NoMem = ENOMEM,
    /// `ENOSPC` (28): the `vm_galloc` address range is exhausted.
    NoSpc = ENOSPC,
}

impl Errno {
    /// The C value.
    pub const fn raw(self) -> c_int {
        self as c_int
    }
}

/// What ran out when a service answers `ENOMEM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shortage {
    /// No free page frame.
    Frames,
    /// No free segment id.
    Sids,
    /// No room for bookkeeping (segment table, mapping table, HPT group).
    Metadata,
    /// No free effective-address region in the address space.
    Regions,
}

/// Declares a service error enum and its errno mapping.
macro_rules! service_error {
    (
        $(#[$meta:meta])*
        $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $({ $($(#[$fmeta:meta])* $field:ident : $fty:ty),* $(,)? })? $(($tty:ty))? => $errno:ident
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant $({ $($(#[$fmeta])* $field: $fty),* })? $(($tty))?,
            )*
        }

        impl $name {
            /// The AIX errno this error becomes at the C boundary.
            pub const fn errno(&self) -> Errno {
                match self {
                    $( service_error!(@pat $name $variant $({ $($field),* })? $(($tty))?) => Errno::$errno, )*
                }
            }
        }
    };
    (@pat $name:ident $variant:ident { $($field:ident),* }) => { $name::$variant { .. } };
    (@pat $name:ident $variant:ident ($tty:ty)) => { $name::$variant(..) };
    (@pat $name:ident $variant:ident) => { $name::$variant };
}

pub use super::services::{
    AsAtt64Error, AsAttError, AsDet64Error, AsDetError, AsGeth64Error, AsGethError, AsPuth64Error,
    AsPuthError, AsSeth64Error, GetadspError, VmAttError, VmDetError, VmGallocError, VmGfreeError,
    VmGuattError, VmGudetError, VmsCreateError, VmsDeleteError,
};

impl super::services::ProcessError {
    /// The errno a system call that failed with this answers: `ENOMEM`
    /// when the core ran out of something, `EINVAL` otherwise (a pid that
    /// is taken or unknown, a core refusal of the arguments).
    pub const fn errno(&self) -> Errno {
        use super::backend::CoreError;
        use super::services::ProcessError;
        match self {
            ProcessError::Core(CoreError::Shortage(_)) => Errno::NoMem,
            ProcessError::Exists(_) | ProcessError::NoSuchProcess(_) | ProcessError::Core(_) => {
                Errno::Inval
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_values() {
        assert_eq!(Errno::Inval.raw(), 22);
        assert_eq!(Errno::NoMem.raw(), 12);
        assert_eq!(Errno::NoSpc.raw(), 28);
    }

    #[test]
    fn mapping_follows_the_contract() {
        assert_eq!(
            VmGallocError::RangeExhausted { segments: 1 }.errno(),
            Errno::NoSpc
        );
        assert_eq!(
            VmGallocError::NoMemory(Shortage::Frames).errno(),
            Errno::NoMem
        );
        assert_eq!(VmGallocError::BadSize { size: 0 }.errno(), Errno::Inval);
        assert_eq!(VmGallocError::WrongEnvironment.errno(), Errno::Inval);
        assert_eq!(
            AsAtt64Error::NoMemory(Shortage::Regions).errno(),
            Errno::NoMem
        );
        assert_eq!(AsAtt64Error::NoSuchSegment { sid: 3 }.errno(), Errno::Inval);
        assert_eq!(VmsDeleteError::BadVmid { vmid: 9 }.errno(), Errno::Inval);
    }

    #[test]
    fn process_errors_map_to_enomem_only_for_shortages() {
        use crate::aix::backend::{CoreError, Space};
        use crate::aix::services::ProcessError;
        use crate::platform::ProcessId;
        let pid = ProcessId(7);
        for s in [
            Shortage::Frames,
            Shortage::Sids,
            Shortage::Metadata,
            Shortage::Regions,
        ] {
            assert_eq!(
                ProcessError::Core(CoreError::Shortage(s)).errno(),
                Errno::NoMem
            );
        }
        assert_eq!(ProcessError::Exists(pid).errno(), Errno::Inval);
        assert_eq!(ProcessError::NoSuchProcess(pid).errno(), Errno::Inval);
        let refused = CoreError::NoSuchSpace(Space::Process(pid));
        assert_eq!(ProcessError::Core(refused).errno(), Errno::Inval);
    }
}
