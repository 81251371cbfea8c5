//! Typed errors of the AIX services.
//!
//! Each service has its own small enum whose variants carry the value that
//! was refused (the style of seL4's and riscv's Rust error types). They
//! become AIX errno values only at the C boundary, through `errno()`; so
//! does [`super::ProcessError`] at a kernel's system call boundary.

use super::consts::{EINVAL, ENOMEM, ENOSPC};
use super::ctypes::{vmid_t, vmkey_t, vmsize_t};
use super::handle::HandleError;
use core::ffi::{c_int, c_long};

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

service_error! {
    /// Why `vm_galloc` refused.
    VmGallocError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// `type` lacks `V_WORKING`.
        MissingWorking {
            /// The type passed.
            type_flags: c_int,
        } => Inval,
        /// `type` has bits other than `V_WORKING | V_SYSTEM | V_UREAD | V_NOEXEC`.
        UnknownTypeFlags {
            /// The type passed.
            type_flags: c_int,
        } => Inval,
        /// `size` is zero, negative or too large to round.
        BadSize {
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// No run of free segments this long is left in the galloc range.
        RangeExhausted {
            /// Segments the allocation needs.
            segments: u64,
        } => NoSpc,
        /// A resource other than address range ran out.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `vm_gfree` refused.
    VmGfreeError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// (eaddr, rounded size) is not exactly one live allocation.
        NoSuchAllocation {
            /// The address passed.
            eaddr: u64,
            /// The size passed.
            size: vmsize_t,
        } => Inval,
    }
}

service_error! {
    /// Why `vm_guatt` refused.
    VmGuattError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// `flags` is not `VU_ANYWHERE`.
        BadFlags {
            /// The flags passed.
            flags: c_long,
        } => Inval,
        /// `key` is neither `VM_PRIV` nor `VM_UNPRIV`.
        BadKey {
            /// The key passed.
            key: vmkey_t,
        } => Inval,
        /// `size` is zero or negative.
        BadSize {
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// `*uaddr` was not NULL on entry.
        UaddrNotNull {
            /// The value found at `*uaddr`.
            uaddr: u64,
        } => Inval,
        /// [kaddr, kaddr + size) is not inside one `vm_galloc` region.
        NotInAllocation {
            /// The kernel address passed.
            kaddr: u64,
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// The current process has no user address space (a kernel process,
        /// or no process at all).
        NoUserAddressSpace => Inval,
        /// No run of free user segments, or no room to map them.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `vm_gudet` refused.
    VmGudetError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// `flags` is not `VU_ANYWHERE`.
        BadFlags {
            /// The flags passed.
            flags: c_long,
        } => Inval,
        /// [kaddr, kaddr + size) is not inside a live `vm_galloc` region
        /// (for example after `vm_gfree`).
        NotAllocated {
            /// The kernel address passed.
            kaddr: u64,
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// The current process has no attachment (kaddr, uaddr, size).
        NoSuchAttachment {
            /// The kernel address passed.
            kaddr: u64,
            /// The user address passed.
            uaddr: u64,
            /// The size passed.
            size: vmsize_t,
        } => Inval,
    }
}

service_error! {
    /// Why `vm_att` refused. AIX panics when no region is free; this
    /// project logs an error and fails instead.
    VmAttError {
        /// The handle is malformed.
        BadHandle(HandleError) => Inval,
        /// The handle names no live segment (or one `vms_delete`d while
        /// held, which stays usable where it is mapped but cannot be
        /// mapped again).
        NoSuchSegment {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// Every temporary-attach slot of the current context is in use.
        NoFreeRegion => NoMem,
        /// The mapping could not be made.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `vm_det` refused. AIX halts the system; this project logs an
    /// error and changes nothing.
    VmDetError {
        /// `eaddr` is not in a region `vm_att` attached in this context
        /// (unmapped, or a system region).
        NotAttached {
            /// The address passed.
            eaddr: u64,
        } => Inval,
    }
}

service_error! {
    /// Why `getadsp` found no address space.
    GetadspError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The current process is not known to the services.
        NoAddressSpace => Inval,
    }
}

service_error! {
    /// Why `as_att` refused (C: returns NULL).
    AsAttError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The `adspace_t` pointer is not one `getadsp` handed out for a
        /// live address space.
        BadAdspace {
            /// The pointer passed, as an address.
            adsp: usize,
        } => Inval,
        /// The handle is malformed.
        BadHandle(HandleError) => Inval,
        /// The handle names no live segment (or one `vms_delete`d while
        /// held, which stays usable where it is mapped but cannot be
        /// mapped again).
        NoSuchSegment {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// The handle names a `vm_galloc` segment: global kernel memory
        /// reaches a process only through `vm_guatt`.
        NotAttachable {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// All of registers 3..13 and 15 are allocated.
        NoFreeRegister => NoMem,
        /// The mapping could not be made.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `as_det` refused.
    AsDetError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The `adspace_t` pointer is not a live one.
        BadAdspace {
            /// The pointer passed, as an address.
            adsp: usize,
        } => Inval,
        /// The address is in register 0, 1, 2 or 14.
        ReservedRegister {
            /// The register number.
            sr: usize,
        } => Inval,
        /// The register is not allocated.
        Unallocated {
            /// The register number.
            sr: usize,
        } => Inval,
        /// The register holds something `as_att` did not attach (text,
        /// data, a `vm_guatt` attachment).
        NotAttached {
            /// The register number.
            sr: usize,
        } => Inval,
    }
}

service_error! {
    /// Why `as_geth`/`as_getsrval` found no handle (C: `INVLSID`).
    AsGethError {
        /// Called in an environment the service does not allow.
        WrongEnvironment => Inval,
        /// The `adspace_t` pointer is not a live one.
        BadAdspace {
            /// The pointer passed, as an address.
            adsp: usize,
        } => Inval,
        /// The register is not allocated.
        Unallocated {
            /// The register number.
            sr: usize,
        } => Inval,
        /// The register maps global kernel memory (a `vm_guatt`
        /// attachment): its handle would reach every page of the
        /// allocation, so it is not handed out.
        GlobalMemory {
            /// The register number.
            sr: usize,
        } => Inval,
    }
}

service_error! {
    /// Why `as_puth` refused (C: returns nothing, logs a warning).
    AsPuthError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The `adspace_t` pointer is not a live one.
        BadAdspace {
            /// The pointer passed, as an address.
            adsp: usize,
        } => Inval,
        /// The handle is malformed.
        BadHandle(HandleError) => Inval,
        /// No `as_geth` hold on this segment is outstanding in this address
        /// space.
        NoHold {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
    }
}

service_error! {
    /// Why `as_att64` refused (C: returns 0 and sets errno).
    AsAtt64Error {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The handle is malformed.
        BadHandle(HandleError) => Inval,
        /// The handle names no live segment (or one `vms_delete`d while
        /// held, which stays usable where it is mapped but cannot be
        /// mapped again).
        NoSuchSegment {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// The handle names a `vm_galloc` segment: global kernel memory
        /// reaches a process only through `vm_guatt`.
        NotAttachable {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// No free region, or no room to map it.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `as_det64` refused.
    AsDet64Error {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The address is outside the current user address space.
        OutOfRange {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The region is not one `as_att`/`as_att64`/`as_seth64` attached
        /// (kernel, text, private, a `vm_guatt` attachment, or a reserved
        /// register).
        NotDetachable {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// Nothing is mapped at the address.
        Unallocated {
            /// The address passed.
            addr: u64,
        } => Inval,
    }
}

service_error! {
    /// Why `as_seth64` refused.
    AsSeth64Error {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The address is outside the current user address space.
        OutOfRange {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The address is in a reserved segment register (0, 1, 2 or 14)
        /// of a 32-bit process or kernel process: kernel, text, private
        /// data and the shared library data stay as they are (the same
        /// registers `as_det64` refuses to take down).
        ReservedRegister {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The handle is malformed.
        BadHandle(HandleError) => Inval,
        /// The handle names no live segment (or one `vms_delete`d while
        /// held, which stays usable where it is mapped but cannot be
        /// mapped again).
        NoSuchSegment {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// The handle names a `vm_galloc` segment: global kernel memory
        /// reaches a process only through `vm_guatt`.
        NotAttachable {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
        /// The mapping could not be made.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `as_geth64`/`as_getsrval64` found no handle (C: `INVLSID`).
    AsGeth64Error {
        /// Called in an environment the service does not allow.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The address is outside the current user address space.
        OutOfRange {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// Nothing is mapped at the address.
        Unmapped {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The address maps global kernel memory (a `vm_guatt`
        /// attachment): its handle would reach every page of the
        /// allocation, so it is not handed out.
        GlobalMemory {
            /// The address passed.
            addr: u64,
        } => Inval,
    }
}

service_error! {
    /// Why `as_puth64` refused.
    AsPuth64Error {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// No current process.
        NoAddressSpace => Inval,
        /// The address is outside the current user address space.
        OutOfRange {
            /// The address passed.
            addr: u64,
        } => Inval,
        /// The handle is malformed.
        BadHandle(HandleError) => Inval,
        /// The current process holds no `as_geth64` hold on this segment.
        NoHold {
            /// The SID in the handle.
            sid: u64,
        } => Inval,
    }
}

service_error! {
    /// Why `vms_create` refused.
    VmsCreateError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// `type` lacks `V_WORKING` or has bits other than `V_WORKING |
        /// V_SYSTEM | V_UREAD | V_NOEXEC`.
        BadType {
            /// The type passed.
            type_flags: c_int,
        } => Inval,
        /// `size` is zero, negative or larger than a segment.
        BadSize {
            /// The size passed.
            size: vmsize_t,
        } => Inval,
        /// The segment could not be created.
        NoMemory(Shortage) => NoMem,
    }
}

service_error! {
    /// Why `vms_delete` refused.
    VmsDeleteError {
        /// Called in the interrupt environment.
        WrongEnvironment => Inval,
        /// The vmid names no segment `vms_create` made, or one already
        /// deleted.
        BadVmid {
            /// The vmid passed.
            vmid: vmid_t,
        } => Inval,
        /// The segment is mapped somewhere the services did not map it
        /// (so they cannot take the mapping down first).
        MappedElsewhere {
            /// The vmid passed.
            vmid: vmid_t,
        } => Inval,
    }
}

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
