//! A reader of the flattened device tree (FDT, "DTB"): how skiboot (OPAL)
//! hands a powernv kernel the machine — memory, processors, the OPAL node,
//! cache and page sizes — in r3 at entry, where pseries firmware offers an
//! Open Firmware client interface instead.
//!
//! The format (Devicetree Specification v0.4, chapter 5), all integers
//! big-endian:
//!
//! * a 40-byte header: magic `0xd00dfeed`, total size, offsets of the
//!   structure block, the strings block and the memory reservation map,
//!   version (17), last compatible version (16), the boot CPU's physical
//!   id, the sizes of the strings and structure blocks;
//! * the structure block: a sequence of 32-bit tokens — `BEGIN_NODE` (1)
//!   followed by the node's NUL-terminated name padded to 4 bytes,
//!   `END_NODE` (2), `PROP` (3) followed by the value's length, the offset
//!   of the property's name in the strings block and the value (padded),
//!   `NOP` (4) and `END` (9);
//! * the strings block: NUL-terminated property names.
//!
//! The reader never allocates and never trusts the blob: every offset and
//! length is checked against the blob's size, and a malformed tree gives
//! [`FdtError`] or stops an iteration instead of reading out of bounds.

/// `magic` of a flattened device tree.
pub const FDT_MAGIC: u32 = 0xd00d_feed;

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// Header size in bytes (version 17).
pub const HEADER_BYTES: usize = 40;

/// Why a blob is not a device tree this reader can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// Shorter than its header, or than the size the header gives.
    Truncated,
    /// Not `0xd00dfeed`.
    BadMagic(u32),
    /// A version before 16 (the format this reader knows).
    Version(u32),
    /// A block lies outside the blob.
    BadBlock,
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A flattened device tree in memory.
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
    /// From the memory reservation map to the end of the tree.
    rsvmap: &'a [u8],
    boot_cpuid: u32,
}

impl<'a> Fdt<'a> {
    /// Reads the header of the tree in `blob` (which may be longer than
    /// the tree) and checks its blocks lie within it.
    pub fn new(blob: &'a [u8]) -> Result<Fdt<'a>, FdtError> {
        let word = |i: usize| be32(blob, i * 4).ok_or(FdtError::Truncated);
        let magic = word(0)?;
        if magic != FDT_MAGIC {
            return Err(FdtError::BadMagic(magic));
        }
        let total = word(1)? as usize;
        let blob = blob.get(..total).ok_or(FdtError::Truncated)?;
        if total < HEADER_BYTES {
            return Err(FdtError::Truncated);
        }
        let version = word(5)?;
        if version < 16 {
            return Err(FdtError::Version(version));
        }
        let block = |off: u32, size: u32| {
            let (off, size) = (off as usize, size as usize);
            blob.get(off..off.checked_add(size)?)
        };
        let structs = block(word(2)?, word(9)?).ok_or(FdtError::BadBlock)?;
        let strings = block(word(3)?, word(8)?).ok_or(FdtError::BadBlock)?;
        let rsvmap = blob.get(word(4)? as usize..).ok_or(FdtError::BadBlock)?;
        Ok(Fdt {
            structs,
            strings,
            rsvmap,
            boot_cpuid: word(7)?,
        })
    }

    /// Reads the tree at `ptr` (the r3 of a powernv entry).
    ///
    /// # Safety
    ///
    /// `ptr` must point to readable memory holding at least the header and
    /// then as many bytes as its `totalsize` says, alive for `'a`.
    pub unsafe fn from_ptr(ptr: *const u8) -> Result<Fdt<'a>, FdtError> {
        // SAFETY: the caller guarantees the header is readable.
        let header = unsafe { core::slice::from_raw_parts(ptr, HEADER_BYTES) };
        let total = be32(header, 4).ok_or(FdtError::Truncated)? as usize;
        if total < HEADER_BYTES {
            return Err(FdtError::Truncated);
        }
        // SAFETY: the caller guarantees `totalsize` bytes are readable.
        Fdt::new(unsafe { core::slice::from_raw_parts(ptr, total) })
    }

    /// The memory reservation map: `(address, size)` pairs of memory the
    /// firmware keeps (OPAL's own image, on powernv), up to the `(0, 0)`
    /// that ends it (or the end of the blob, for a malformed map).
    pub fn reservations(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.rsvmap
            .chunks_exact(16)
            .map(|c| {
                let word = |at: usize| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&c[at..at + 8]);
                    u64::from_be_bytes(w)
                };
                (word(0), word(8))
            })
            .take_while(|&(addr, size)| addr != 0 || size != 0)
    }

    /// The boot processor's physical id from the header.
    pub fn boot_cpuid(&self) -> u32 {
        self.boot_cpuid
    }

    /// The root node.
    pub fn root(&self) -> Option<Node<'a>> {
        let mut at = 0;
        loop {
            match be32(self.structs, at)? {
                NOP => at += 4,
                BEGIN_NODE => return self.node_at(at),
                // An empty tree.
                END => return None,
                _ => return None,
            }
        }
    }

    /// The node at `path` (`/` for the root, `/cpus`, `/ibm,opal`). A
    /// component without `@` also matches a node whose name has a unit
    /// address (`memory` finds `memory@0`).
    pub fn find(&self, path: &str) -> Option<Node<'a>> {
        let mut node = self.root()?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node = node.child(part)?;
        }
        Some(node)
    }

    fn node_at(&self, at: usize) -> Option<Node<'a>> {
        let name_at = at + 4;
        let rest = self.structs.get(name_at..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        let name = core::str::from_utf8(&rest[..len]).ok()?;
        Some(Node {
            fdt: *self,
            name,
            body: name_at + align4(len + 1),
        })
    }

    fn string(&self, off: u32) -> Option<&'a str> {
        let rest = self.strings.get(off as usize..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        core::str::from_utf8(&rest[..len]).ok()
    }

    /// Skips the node whose body starts at `at` (after its name); returns
    /// the offset after its `END_NODE`.
    fn skip_node(&self, mut at: usize) -> Option<usize> {
        let mut depth = 1usize;
        while depth > 0 {
            match be32(self.structs, at)? {
                BEGIN_NODE => {
                    let n = self.node_at(at)?;
                    at = n.body;
                    depth += 1;
                }
                END_NODE => {
                    at += 4;
                    depth -= 1;
                }
                PROP => {
                    let len = be32(self.structs, at + 4)? as usize;
                    at = at + 12 + align4(len);
                }
                NOP => at += 4,
                _ => return None,
            }
        }
        Some(at)
    }
}

/// A node of the tree.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    name: &'a str,
    /// Offset of the first token after the name.
    body: usize,
}

/// A property: name and raw (big-endian) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its value as stored.
    pub value: &'a [u8],
}

impl<'a> Property<'a> {
    /// The value as big-endian 32-bit cells (a trailing partial cell is
    /// dropped).
    pub fn cells(&self) -> impl Iterator<Item = u32> + 'a {
        self.value
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The value as one 32-bit cell.
    pub fn as_u32(&self) -> Option<u32> {
        (self.value.len() == 4)
            .then(|| be32(self.value, 0))
            .flatten()
    }

    /// The value as one 64-bit number (two cells) or one cell.
    pub fn as_u64(&self) -> Option<u64> {
        match self.value.len() {
            4 => self.as_u32().map(u64::from),
            8 => Some((u64::from(be32(self.value, 0)?) << 32) | u64::from(be32(self.value, 4)?)),
            _ => None,
        }
    }

    /// The value as a NUL-terminated string.
    pub fn as_str(&self) -> Option<&'a str> {
        let (last, text) = self.value.split_last()?;
        (*last == 0)
            .then(|| core::str::from_utf8(text).ok())
            .flatten()
    }
}

impl<'a> Node<'a> {
    /// The node's name with its unit address (`memory@0`); empty for the
    /// root.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The name without the unit address.
    pub fn base_name(&self) -> &'a str {
        self.name.split('@').next().unwrap_or(self.name)
    }

    /// The node's properties, in order.
    pub fn properties(&self) -> impl Iterator<Item = Property<'a>> + 'a {
        let fdt = self.fdt;
        let mut at = self.body;
        core::iter::from_fn(move || loop {
            match be32(fdt.structs, at)? {
                NOP => at += 4,
                PROP => {
                    let len = be32(fdt.structs, at + 4)? as usize;
                    let nameoff = be32(fdt.structs, at + 8)?;
                    let value = fdt.structs.get(at + 12..(at + 12).checked_add(len)?)?;
                    at = at + 12 + align4(len);
                    return Some(Property {
                        name: fdt.string(nameoff)?,
                        value,
                    });
                }
                _ => return None,
            }
        })
    }

    /// The property `name`.
    pub fn property(&self, name: &str) -> Option<Property<'a>> {
        self.properties().find(|p| p.name == name)
    }

    /// The node's children, in order.
    pub fn children(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        let fdt = self.fdt;
        // Past the properties.
        let mut at = Some(self.body);
        while let Some(a) = at {
            match be32(fdt.structs, a) {
                Some(NOP) => at = Some(a + 4),
                Some(PROP) => {
                    at = be32(fdt.structs, a + 4).map(|len| a + 12 + align4(len as usize));
                }
                _ => break,
            }
        }
        core::iter::from_fn(move || loop {
            let a = at?;
            match be32(fdt.structs, a)? {
                NOP => at = Some(a + 4),
                BEGIN_NODE => {
                    let child = fdt.node_at(a)?;
                    at = fdt.skip_node(child.body);
                    return Some(child);
                }
                _ => {
                    at = None;
                    return None;
                }
            }
        })
    }

    /// The child named `name` (with or without its unit address).
    pub fn child(&self, name: &str) -> Option<Node<'a>> {
        self.children()
            .find(|c| c.name() == name || (!name.contains('@') && c.base_name() == name))
    }

    /// `#address-cells` and `#size-cells` this node gives its children
    /// (2 and 1 when absent, the specification's defaults).
    pub fn cell_sizes(&self) -> (u32, u32) {
        let get = |n| self.property(n).and_then(|p| p.as_u32());
        (
            get("#address-cells").unwrap_or(2),
            get("#size-cells").unwrap_or(1),
        )
    }
}

/// The `(address, size)` pairs of a `reg` value whose parent uses
/// `cells` = (`#address-cells`, `#size-cells`), each at most 2.
pub fn reg_pairs<'a>(
    reg: Property<'a>,
    cells: (u32, u32),
) -> impl Iterator<Item = (u64, u64)> + 'a {
    let (ac, sc) = (cells.0 as usize, cells.1 as usize);
    let stride = (ac + sc) * 4;
    let ok = (1..=2).contains(&ac) && sc <= 2 && stride > 0;
    let value = if ok { reg.value } else { &[] };
    value.chunks_exact(stride.max(4)).map(move |c| {
        let num = |cells: &[u8]| {
            cells.chunks_exact(4).fold(0u64, |acc, w| {
                (acc << 32) | u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
            })
        };
        (num(&c[..ac * 4]), num(&c[ac * 4..]))
    })
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    use super::*;
    use alloc::vec::Vec;

    /// A test-only writer of flattened trees.
    struct Builder {
        structs: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn new() -> Builder {
            Builder {
                structs: Vec::new(),
                strings: Vec::new(),
            }
        }
        fn word(&mut self, w: u32) -> &mut Self {
            self.structs.extend_from_slice(&w.to_be_bytes());
            self
        }
        fn pad(v: &mut Vec<u8>) {
            while !v.len().is_multiple_of(4) {
                v.push(0);
            }
        }
        fn begin(&mut self, name: &str) -> &mut Self {
            self.word(BEGIN_NODE);
            self.structs.extend_from_slice(name.as_bytes());
            self.structs.push(0);
            Self::pad(&mut self.structs);
            self
        }
        fn end(&mut self) -> &mut Self {
            self.word(END_NODE)
        }
        fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(PROP).word(value.len() as u32).word(off);
            self.structs.extend_from_slice(value);
            Self::pad(&mut self.structs);
            self
        }
        fn prop_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
            self.prop(name, &v)
        }
        fn finish(&mut self, boot_cpuid: u32) -> Vec<u8> {
            self.word(END);
            let rsvmap = HEADER_BYTES;
            let structs = rsvmap + 16;
            let strings = structs + self.structs.len();
            let total = strings + self.strings.len();
            let mut out = Vec::new();
            for w in [
                FDT_MAGIC,
                total as u32,
                structs as u32,
                strings as u32,
                rsvmap as u32,
                17,
                16,
                boot_cpuid,
                self.strings.len() as u32,
                self.structs.len() as u32,
            ] {
                out.extend_from_slice(&w.to_be_bytes());
            }
            out.extend_from_slice(&[0; 16]);
            out.extend_from_slice(&self.structs);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// A powernv-like tree: memory, two CPUs, the OPAL node.
    fn powernv_like() -> Vec<u8> {
        let mut b = Builder::new();
        b.begin("")
            .prop_cells("#address-cells", &[2])
            .prop_cells("#size-cells", &[2])
            .prop("compatible", b"qemu,powernv9\0ibm,powernv\0")
            .begin("memory@0")
            .prop("device_type", b"memory\0")
            .prop_cells("reg", &[0, 0, 0, 0x8000_0000])
            .end()
            .begin("cpus")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[0]);
        for (i, pir) in [0u32, 4].into_iter().enumerate() {
            let name = if i == 0 {
                "PowerPC,POWER9@0"
            } else {
                "PowerPC,POWER9@4"
            };
            b.begin(name)
                .prop("device_type", b"cpu\0")
                .prop_cells("reg", &[pir])
                .prop_cells("ibm,ppc-interrupt-server#s", &[pir])
                .prop_cells("d-cache-block-size", &[128])
                .word(NOP)
                .end();
        }
        b.end()
            .begin("ibm,opal")
            .prop_cells("opal-base-address", &[0, 0x3000_0000])
            .prop_cells("opal-entry-address", &[0, 0x3000_1234])
            .end()
            .end();
        b.finish(0)
    }

    #[test]
    fn a_powernv_like_tree_reads_back() {
        let blob = powernv_like();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.boot_cpuid(), 0);
        let root = fdt.root().unwrap();
        assert_eq!(root.name(), "");
        assert_eq!(root.cell_sizes(), (2, 2));
        assert_eq!(
            root.property("compatible").unwrap().value,
            b"qemu,powernv9\0ibm,powernv\0"
        );
        let names: Vec<&str> = root.children().map(|c| c.name()).collect();
        assert_eq!(names, ["memory@0", "cpus", "ibm,opal"]);
        // Memory: found without its unit address; reg in 2+2 cells.
        let mem = fdt.find("/memory").unwrap();
        assert_eq!(
            mem.property("device_type").unwrap().as_str(),
            Some("memory")
        );
        let regs: Vec<(u64, u64)> =
            reg_pairs(mem.property("reg").unwrap(), root.cell_sizes()).collect();
        assert_eq!(regs, [(0, 0x8000_0000)]);
        // CPUs, with a NOP between a property and the end of a node.
        let cpus = fdt.find("/cpus").unwrap();
        let cpu_list: Vec<(u32, u32)> = cpus
            .children()
            .map(|c| {
                (
                    c.property("reg").unwrap().as_u32().unwrap(),
                    c.property("d-cache-block-size").unwrap().as_u32().unwrap(),
                )
            })
            .collect();
        assert_eq!(cpu_list, [(0, 128), (4, 128)]);
        let second = fdt.find("/cpus/PowerPC,POWER9@4").unwrap();
        let servers: Vec<u32> = second
            .property("ibm,ppc-interrupt-server#s")
            .unwrap()
            .cells()
            .collect();
        assert_eq!(servers, [4]);
        // OPAL.
        let opal = fdt.find("/ibm,opal").unwrap();
        assert_eq!(
            opal.property("opal-base-address").unwrap().as_u64(),
            Some(0x3000_0000)
        );
        assert_eq!(
            opal.property("opal-entry-address").unwrap().as_u64(),
            Some(0x3000_1234)
        );
        assert!(fdt.find("/nothing").is_none());
        assert!(fdt.find("/cpus/PowerPC,POWER9@8").is_none());
    }

    #[test]
    fn the_reservation_map_ends_at_its_zero_entry() {
        let blob = powernv_like();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.reservations().count(), 0);
        // Two entries in front of the builder's terminator: the map grows
        // by 32 bytes and every later block moves with it.
        let mut grown = blob[..HEADER_BYTES].to_vec();
        for (a, n) in [(0x3000_0000u64, 0x1c0_0000u64), (0x3100_0000, 0x10_0000)] {
            grown.extend_from_slice(&a.to_be_bytes());
            grown.extend_from_slice(&n.to_be_bytes());
        }
        grown.extend_from_slice(&blob[HEADER_BYTES..]);
        let mut word = |i: usize, add: u32| {
            let v = u32::from_be_bytes(grown[i * 4..i * 4 + 4].try_into().unwrap()) + add;
            grown[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        };
        word(1, 32); // totalsize
        word(2, 32); // off_dt_struct
        word(3, 32); // off_dt_strings
        let fdt = Fdt::new(&grown).unwrap();
        let r: Vec<_> = fdt.reservations().collect();
        assert_eq!(r, [(0x3000_0000, 0x1c0_0000), (0x3100_0000, 0x10_0000)]);
        assert!(fdt.find("/cpus").is_some(), "the tree still reads");
        // A map cut off by the end of the blob stops there.
        let mut cut = grown.clone();
        cut.truncate(HEADER_BYTES + 24);
        cut[4..8].copy_from_slice(&((HEADER_BYTES + 24) as u32).to_be_bytes());
        cut[8..12].copy_from_slice(&(HEADER_BYTES as u32).to_be_bytes());
        cut[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_be_bytes());
        cut[32..36].copy_from_slice(&0u32.to_be_bytes());
        cut[36..40].copy_from_slice(&0u32.to_be_bytes());
        let fdt = Fdt::new(&cut).unwrap();
        assert_eq!(fdt.reservations().count(), 1);
    }

    #[test]
    fn bad_blobs_are_refused() {
        let blob = powernv_like();
        assert_eq!(Fdt::new(&blob[..20]).unwrap_err(), FdtError::Truncated);
        assert_eq!(
            Fdt::new(&blob[..blob.len() - 1]).unwrap_err(),
            FdtError::Truncated
        );
        let mut bad = blob.clone();
        bad[0] = 0;
        assert!(matches!(Fdt::new(&bad), Err(FdtError::BadMagic(_))));
        let mut old = blob.clone();
        old[20..24].copy_from_slice(&15u32.to_be_bytes());
        assert_eq!(Fdt::new(&old).unwrap_err(), FdtError::Version(15));
        let mut off = blob.clone();
        off[8..12].copy_from_slice(&0xffff_0000u32.to_be_bytes());
        assert_eq!(Fdt::new(&off).unwrap_err(), FdtError::BadBlock);
        // A longer buffer than the tree is fine (the tree says its size).
        let mut longer = blob.clone();
        longer.extend_from_slice(&[0xee; 64]);
        assert!(Fdt::new(&longer).unwrap().find("/cpus").is_some());
    }

    #[test]
    fn a_corrupt_structure_block_ends_walks_without_reading_out_of_bounds() {
        let blob = powernv_like();
        let structs = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
        // Every byte of the structure block set to a garbage value in
        // turn: no walk may panic.
        for i in structs..blob.len() {
            let mut b = blob.clone();
            b[i] ^= 0xa5;
            if let Ok(fdt) = Fdt::new(&b) {
                let _ = fdt.find("/cpus/PowerPC,POWER9@4");
                if let Some(root) = fdt.root() {
                    for c in root.children() {
                        let _ = c.properties().count();
                        let _ = c.children().count();
                    }
                }
            }
        }
    }

    #[test]
    fn property_decoders() {
        let p = |v: &'static [u8]| Property {
            name: "x",
            value: v,
        };
        assert_eq!(p(&[0, 0, 1, 0]).as_u32(), Some(256));
        assert_eq!(p(&[0, 0, 1]).as_u32(), None);
        assert_eq!(p(&[0, 0, 0, 1, 0, 0, 0, 2]).as_u64(), Some((1 << 32) | 2));
        assert_eq!(p(b"abc\0").as_str(), Some("abc"));
        assert_eq!(p(b"abc").as_str(), None);
        let reg = p(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
        let pairs: Vec<(u64, u64)> = reg_pairs(reg, (1, 1)).collect();
        assert_eq!(pairs, [(1, 2), (3, 4)]);
        assert_eq!(reg_pairs(reg, (3, 1)).count(), 0);
    }
}
