/*
 * sys/adspace.h: the AIX address-space services of the vmm crate (Rust),
 * with AIX's names and C signatures (64-bit kernel, LP64).
 *
 * On ppc64 the 16 "segment registers" of adspace_t are the SLB entries for
 * ESIDs 0..15 (addresses below 4 GB). The *64 services work on the current
 * process only.
 */
#ifndef VMM_SYS_ADSPACE_H
#define VMM_SYS_ADSPACE_H

#include "vmuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 16 segment registers: allocation mask (register x at ADSP_MASK(x),
 * register 0 the top bit of 32) and the handle loaded in each. */
typedef struct adspace_t {
    unsigned long alloc;   /* ulong32int64_t */
    vmhandle_t srval[16];
} adspace_t;

#define ADSP_MASK(x) ((1U << 31) >> (x))
#define adsp_is_alloc(a, x) (((a)->alloc & ADSP_MASK(x)) != 0)

/* The current process's adspace_t (a kernel process gets the kernel's);
 * NULL in the interrupt environment or before installation. */
extern adspace_t *getadsp(void);

/* Map vmhandle at a free segment register (never 0, 1, 2 or 14) of adsp;
 * returns (sr << 28) | (offset & SEGOFFSET), NULL when none is free or on a
 * bad argument. Process environment. */
extern caddr_t as_att(adspace_t *adsp, vmhandle_t vmhandle, caddr_t offset);

/* Unmap the register containing eaddr. EINVAL for registers 0, 1, 2, 14 or
 * an unallocated one. Process environment. */
extern int as_det(adspace_t *adsp, caddr_t eaddr);

/* The handle at addr, with a hold that defers deletion until as_puth;
 * INVLSID if nothing is mapped there, or if addr is a vm_guatt attachment
 * (its handle would reach every page of the vm_galloc region, not only the
 * attached ones). Process environment. */
extern vmhandle_t as_geth(adspace_t *adsp, caddr_t addr);

/* Release one as_geth hold (a put without a get is logged and ignored). */
extern void as_puth(adspace_t *adsp, vmhandle_t vmhandle);

/* as_geth without a hold; never pair it with as_puth. Process or interrupt
 * environment. */
extern vmhandle_t as_getsrval(adspace_t *adsp, caddr_t addr);

/* Map vmhandle at a free region of the current process; returns the region
 * base plus offset (upper 4 bits ignored), or 0 with vmm_errno() EINVAL or
 * ENOMEM. Process environment. */
extern unsigned long long as_att64(vmhandle_t vmhandle, int offset);

/* Unmap the as_att64/as_att/as_seth64 region covering addr64. EINVAL for
 * kernel, text, private or unallocated regions and out-of-range addresses. */
extern int as_det64(unsigned long long addr64);

/* Map vmhandle at the region covering addr64, replacing what was there.
 * 0, EINVAL (out of range, bad handle) or ENOMEM. */
extern int as_seth64(unsigned long long addr64, vmhandle_t vmhandle);

/* The handle at addr64 with a hold that defers deletion until as_puth64;
 * INVLSID out of range or unmapped, and for an address attached with
 * vm_guatt: that handle would let as_att64 map the whole vm_galloc region,
 * bypassing the pages vm_guatt allowed. While held, the segment stays fully
 * usable after vms_delete: the handle can be attached again with as_att64,
 * as_att or vm_att, and fork inherits its mappings. Process environment. */
extern vmhandle_t as_geth64(unsigned long long addr64);

/* Release the as_geth64 hold named by vmhandle. 0, or EINVAL out of range or
 * without a matching as_geth64 (never counted below zero). */
extern int as_puth64(unsigned long long addr64, vmhandle_t vmhandle);

/* as_geth64 without a hold (INVLSID in the same cases). Interrupt
 * environment only for 32-bit address spaces and kernel processes. */
extern vmhandle_t as_getsrval64(unsigned long long addr64);

#ifdef __cplusplus
}
#endif

#endif /* VMM_SYS_ADSPACE_H */
