/*
 * sys/vmuser.h: the AIX global-memory and virtual-memory-object services
 * of the vmm crate (Rust), with AIX's names, values and C signatures
 * (64-bit kernel, LP64).
 *
 * The functions are exported by the vmm crate built with feature "c-abi".
 * They work on the service instance the embedding kernel installs at
 * start-up; until then every call fails with its error value.
 *
 * Errors are AIX errno values (EINVAL, ENOMEM, ENOSPC) returned by the
 * function, except as_att64 (see sys/adspace.h), which returns 0 and leaves
 * the cause for vmm_errno().
 *
 * Refusals and anomalies (a service called from the wrong environment, a
 * bad vm_det address, a vm_att with no free region) are also reported
 * through the Rust `log` crate, to whatever logger the embedder installed.
 *
 * On a host, the harness of tests/cabi (header tests/cabi/c/cabi.h, see
 * README.md) installs the services over an emulated MMU and delivers those
 * log records to a C callback or stderr.
 *
 * The header compiles as C11 and as C++ (C++11 or later). The values are
 * kept equal to the Rust side by vmm/tests/aix_header.rs.
 */
#ifndef VMM_SYS_VMUSER_H
#define VMM_SYS_VMUSER_H

#include "seg.h"

/* static_assert in C++, _Static_assert in C11: the header compiles as both. */
#ifdef __cplusplus
#define VMM_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define VMM_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#ifdef __cplusplus
extern "C" {
#endif

VMM_STATIC_ASSERT(sizeof(long) == 8 && sizeof(void *) == 8,
                  "the AIX services use the LP64 model of the 64-bit kernel");

/* Types of the 64-bit AIX kernel (sys/vm_types.h, sys/types.h). Each
 * typedef names the same type glibc uses for that name, so a hosted
 * program may include both. */
typedef unsigned long vmhandle_t; /* SID << 12 | Ks 0x800 | Kp 0x400 | N 0x200 */
typedef long vmid_t;              /* segment id returned by vms_create */
typedef long vmkey_t;             /* VM_PRIV or VM_UNPRIV */
typedef long vmsize_t;            /* size in bytes, signed */
typedef char *caddr_t;            /* effective address */
typedef unsigned long ulong;
typedef unsigned long dev_t;      /* ignored by vms_create for working segments */

/* vm_galloc / vms_create type flags */
#define V_WORKING 0x1          /* working storage: required */
#define V_SYSTEM 0x20          /* global system memory */
#define V_UREAD 0x80           /* pages user-readable (PP 01): VM_UNPRIV reads */
#define V_NOEXEC 0x80000000    /* no instruction fetch (SLB N) */

/* vm_guatt / vm_gudet flags */
#define VU_ANYWHERE 0x2        /* the only value accepted */

/* access keys of vm_handle / vm_guatt */
#define VM_PRIV 0              /* Ks = Kp = 0: read-write */
#define VM_UNPRIV 1            /* Ks = Kp = 1: none, or read-only with V_UREAD */

/* AIX errno values the services return */
#ifndef EINVAL
#define EINVAL 22
#endif
#ifndef ENOMEM
#define ENOMEM 12
#endif
#ifndef ENOSPC
#define ENOSPC 28
#endif
VMM_STATIC_ASSERT(EINVAL == 22 && ENOMEM == 12 && ENOSPC == 28,
                  "the services return AIX errno values");

/* Segments: SEGSHIFT, SEGSIZE, SEGOFFSET, NSEGS, L2SIDLIMIT, SIDMAX and
 * INVLSID come from sys/seg.h (included above), where AIX defines them. */
#define PAGESIZE 4096

/* Allocate size bytes (rounded up to 4K) of zero-filled global kernel
 * memory in segments of its own; the address is stored in *eaddr.
 * 0, EINVAL (bad type, size <= 0, interrupt environment), ENOSPC (range
 * exhausted, or any positive size too large for it), ENOMEM (SIDs or metadata; frames are taken at first touch).
 * Process environment. */
extern int vm_galloc(int type, vmsize_t size, ulong *eaddr);

/* Free exactly one vm_galloc allocation (eaddr, size as allocated),
 * detaching it from every process first. 0 or EINVAL. Process env. */
extern int vm_gfree(ulong eaddr, vmsize_t size);

/* Attach [kaddr, kaddr + size) of one vm_galloc region to the current
 * process; *uaddr must be NULL and receives the user address. flags must
 * be VU_ANYWHERE. Only the attached pages become reachable. Not inherited
 * across fork. 0, EINVAL or ENOMEM. Process environment. */
extern int vm_guatt(void *kaddr, vmsize_t size, vmkey_t key, long flags, void **uaddr);

/* Undo one vm_guatt of the current process. 0 or EINVAL (bad flags, region
 * freed, no such attachment). Process environment. */
extern int vm_gudet(void *kaddr, void *uaddr, vmsize_t size, long flags);

/* Temporarily attach the segment of vmhandle to the current kernel context;
 * returns the address of offset (upper bits ignored). AIX panics when no
 * region is free; here the failure is logged and NULL returned. Process or
 * interrupt environment. */
extern caddr_t vm_att(vmhandle_t vmhandle, caddr_t offset);

/* Detach the vm_att region containing eaddr. A bad address is logged and
 * ignored (AIX halts). Process or interrupt environment. */
extern void vm_det(caddr_t eaddr);

/* The handle of object vmid with key (0 unlimited, 1 limited); INVLSID for
 * a bad vmid or key. */
extern vmhandle_t vm_handle(vmid_t vmid, vmkey_t key);

/* Create a working segment of size bytes (at most SEGSIZE); the id is
 * stored in *vmid. dev, uplim and downlim are ignored. 0, EINVAL or ENOMEM.
 * Process environment. */
extern int vms_create(vmid_t *vmid, int type, dev_t dev, vmsize_t size, vmsize_t uplim,
                      vmsize_t downlim);

/* Delete a vms_create segment; deferred while an as_geth/as_geth64 hold is
 * outstanding. Until the last put it stays fully usable: the held handle
 * can still be attached with as_att, as_att64 or vm_att, and fork inherits
 * its mappings; the last put takes every mapping down with it. 0 or
 * EINVAL. */
extern int vms_delete(vmid_t vmid);

/* The errno the last failed as_att64 of the current context set (0 if
 * none). An extension of this project: AIX keeps it in the u-area. */
extern int vmm_errno(void);

#ifdef __cplusplus
}
#endif

#endif /* VMM_SYS_VMUSER_H */
