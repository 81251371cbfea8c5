//! Top-level VMM (being written).

/// Temporary stand-ins for vmm-hw's types until they are committed.
pub(crate) mod hwtypes {
    /// Stand-in.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct Sid(u64);
    impl Sid {
        pub fn new(v: u64) -> Self {
            Sid(v)
        }
        pub fn as_u64(self) -> u64 {
            self.0
        }
    }
    pub use arch_ppc64::addr::{Esid, PhysAddr, Ptex};
    pub use arch_ppc64::structures::hpte::Pp;
}
