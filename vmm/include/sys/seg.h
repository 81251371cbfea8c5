/*
 * sys/seg.h: the segment constants of the vmm crate's AIX services, under
 * the header AIX code includes them from (64-bit kernel, LP64).
 *
 * sys/vmuser.h includes this file, so a program may include either or
 * both, in any order: every name is defined here only.
 *
 * The values are kept equal to the Rust side (vmm::aix) by
 * vmm/tests/aix_header.rs.
 */
#ifndef VMM_SYS_SEG_H
#define VMM_SYS_SEG_H

/* A segment spans 256 MB: a 28-bit byte offset. */
#define SEGSHIFT 28
#define SEGSIZE 0x10000000UL
#define SEGOFFSET 0x0FFFFFFFUL
/* Segment registers of a 32-bit address space (ESIDs 0..15). */
#define NSEGS 16
/* SIDs are 35 bits wide; the largest is reserved as INVLSID. */
#define L2SIDLIMIT 35
#define SIDMAX 0x7FFFFFFFFUL
/* The invalid handle: the error value of as_geth, as_geth64, as_getsrval,
 * as_getsrval64 and vm_handle. No valid handle equals it (its low nine
 * bits are set, a valid handle's are clear). */
#define INVLSID 0x7FFFFFFFFUL

#endif /* VMM_SYS_SEG_H */
