/*
 * A kernel extension's view of the AIX memory services: every call goes
 * through the C functions of sys/vmuser.h and sys/adspace.h, and every
 * return value is checked. Exits 0 only if all checks pass.
 */
#include <stdio.h>
#include <stdlib.h>

#include <sys/adspace.h>
#include "cabi.h"
#include "check.h"

#define USER 1
#define SUP 0
#define SHMAT 0x0700000000000000UL
#define GALLOC 0xF100000000000000UL

static void global_memory(void)
{
    ulong k = 0, x = 0;
    void *u = NULL, *bad = (void *)1;

    /* vm_galloc: type, size and pointer checks, then success. */
    CHECK(vm_galloc(0, 4096, &x) == EINVAL);
    CHECK(vm_galloc(V_WORKING | 0x4, 4096, &x) == EINVAL);
    CHECK(vm_galloc(V_WORKING, 0, &x) == EINVAL);
    CHECK(vm_galloc(V_WORKING, -1, &x) == EINVAL);
    CHECK(vm_galloc(V_WORKING, 4096, NULL) == EINVAL);
    CHECK(vm_galloc(V_WORKING, (vmsize_t)4097 << SEGSHIFT, &x) == ENOSPC);
    CHECK(x == 0);
    CHECK(vm_galloc(V_WORKING | V_UREAD, 5000, &k) == 0);
    CHECK(k == GALLOC);
    CHECK(cabi_load(k, SUP) == 0); /* zero-filled */
    CHECK(cabi_store(k + 4100, SUP, 0x5A) == 0);
    CHECK(cabi_load(k + 4100, USER) == -1); /* kernel memory */

    /* vm_guatt: every EINVAL case, then a VM_UNPRIV attachment. */
    CHECK(vm_guatt((void *)k, 5000, VM_PRIV, VU_ANYWHERE, &bad) == EINVAL);
    CHECK(bad == (void *)1);
    CHECK(vm_guatt((void *)k, 5000, VM_PRIV, VU_ANYWHERE, NULL) == EINVAL);
    CHECK(vm_guatt((void *)k, 5000, VM_PRIV, 0, &u) == EINVAL);
    CHECK(vm_guatt((void *)k, 5000, 2, VU_ANYWHERE, &u) == EINVAL);
    CHECK(vm_guatt((void *)k, 0, VM_PRIV, VU_ANYWHERE, &u) == EINVAL);
    CHECK(vm_guatt((void *)k, 8193, VM_PRIV, VU_ANYWHERE, &u) == EINVAL);
    CHECK(vm_guatt((void *)(k + SEGSIZE), 1, VM_PRIV, VU_ANYWHERE, &u) == EINVAL);
    CHECK(u == NULL);
    CHECK(vm_guatt((void *)(k + 4096), 904, VM_UNPRIV, VU_ANYWHERE, &u) == 0);
    CHECK((ulong)u == SHMAT + 4096);
    CHECK(cabi_load((ulong)u + 4, USER) == 0x5A); /* V_UREAD: readable */
    CHECK(cabi_store((ulong)u + 4, USER, 1) == -1); /* VM_UNPRIV: not writable */
    CHECK(cabi_load((ulong)u - 4096, USER) == -1); /* page not attached */

    /* fork: the child does not inherit the attachment. */
    CHECK(cabi_fork(1, 2) == 0);
    CHECK(cabi_set_env(0, 2) == 0);
    CHECK(cabi_load((ulong)u + 4, USER) == -1);
    CHECK(vm_gudet((void *)(k + 4096), u, 904, VU_ANYWHERE) == EINVAL);
    CHECK(cabi_set_env(0, 1) == 0);
    CHECK(cabi_load((ulong)u + 4, USER) == 0x5A);

    /* vm_gudet. */
    CHECK(vm_gudet((void *)(k + 4096), u, 904, 0) == EINVAL);
    CHECK(vm_gudet((void *)(k + 4096), (char *)u + SEGSIZE, 904, VU_ANYWHERE) == EINVAL);
    CHECK(vm_gudet((void *)(k + 4096), u, 904, VU_ANYWHERE) == 0);
    CHECK(cabi_load((ulong)u + 4, USER) == -1);
    CHECK(vm_gudet((void *)(k + 4096), u, 904, VU_ANYWHERE) == EINVAL);

    /* vm_gfree: exact only; afterwards gone, and vm_gudet says EINVAL. */
    u = NULL;
    CHECK(vm_guatt((void *)k, 4096, VM_PRIV, VU_ANYWHERE, &u) == 0);
    CHECK(cabi_store((ulong)u, USER, 7) == 0);
    CHECK(cabi_load(k, SUP) == 7);
    CHECK(vm_gfree(k, 4096) == EINVAL);
    CHECK(vm_gfree(k + 4096, 5000) == EINVAL);
    CHECK(vm_gfree(k, 5000) == 0);
    CHECK(cabi_load((ulong)u, USER) == -1);
    CHECK(cabi_load(k, SUP) == -1);
    CHECK(vm_gudet((void *)k, u, 4096, VU_ANYWHERE) == EINVAL);
    CHECK(vm_gfree(k, 5000) == EINVAL);
}

static void objects_and_64bit_services(void)
{
    vmid_t vmid = -1, other = -1;
    vmhandle_t h, g;
    unsigned long long a;

    CHECK(vms_create(NULL, V_WORKING, 0, 8192, 0, 0) == EINVAL);
    CHECK(vms_create(&vmid, V_UREAD, 0, 8192, 0, 0) == EINVAL);
    CHECK(vms_create(&vmid, V_WORKING, 0, 0, 0, 0) == EINVAL);
    CHECK(vms_create(&vmid, V_WORKING, 0, SEGSIZE + 1, 0, 0) == EINVAL);
    CHECK(vmid == -1);
    CHECK(vms_create(&vmid, V_WORKING, 0, 8192, 0, 0) == 0);
    CHECK(vmid > 0);
    h = vm_handle(vmid, VM_PRIV);
    CHECK(h == ((vmhandle_t)vmid << 12));
    CHECK(vm_handle(vmid, VM_UNPRIV) == (h | 0xC00));
    CHECK(vm_handle(vmid, 7) == INVLSID);
    CHECK(vm_handle(-1, VM_PRIV) == INVLSID);

    /* as_att64: upper 4 bits of the offset ignored; errno on failure. */
    a = as_att64(h, (int)0x70000010);
    CHECK(a == SHMAT + 0x10);
    CHECK(cabi_store(a, USER, 0x21) == 0);
    CHECK(as_att64(h | 0x100, 0) == 0);
    CHECK(vmm_errno() == EINVAL);
    CHECK(as_att64(vm_handle(0x12345, VM_PRIV), 0) == 0);
    CHECK(vmm_errno() == EINVAL);

    /* as_geth64 hold: vms_delete is deferred until as_puth64. */
    CHECK(as_geth64(1ULL << 60) == INVLSID);
    CHECK(as_geth64(SHMAT + 5 * SEGSIZE) == INVLSID);
    CHECK(as_puth64(a, h) == EINVAL); /* put without get */
    g = as_geth64(a);
    CHECK(g == h);
    CHECK(as_puth64(1ULL << 60, g) == EINVAL);
    CHECK(vms_delete(vmid) == 0);
    CHECK(cabi_load(a, USER) == 0x21); /* still usable */
    CHECK(vms_delete(vmid) == EINVAL);
    CHECK(as_puth64(a, g) == 0);
    CHECK(cabi_load(a, USER) == -1); /* gone at the last put */
    CHECK(as_puth64(a, g) == EINVAL);
    CHECK(as_det64(a) == EINVAL);

    /* as_seth64 / as_getsrval64 / as_det64. */
    CHECK(vms_create(&other, V_WORKING, 0, 8192, 0, 0) == 0);
    h = vm_handle(other, VM_PRIV);
    CHECK(as_seth64(0x150000000ULL, h) == 0);
    CHECK(as_getsrval64(0x150000000ULL + 8) == h);
    CHECK(as_seth64(1ULL << 60, h) == EINVAL);
    CHECK(as_seth64(0x160000000ULL, INVLSID) == EINVAL);
    CHECK(as_getsrval64(1ULL << 60) == INVLSID);
    CHECK(as_det64(GALLOC) == EINVAL);
    CHECK(as_det64(0x150000000ULL) == 0);
    CHECK(as_det64(0x150000000ULL) == EINVAL);

    /* vm_att: supervisor only; interrupt environment allowed. */
    {
        caddr_t p = vm_att(h, (caddr_t)0x70001234UL);
        CHECK(p != NULL);
        CHECK(((ulong)p & SEGOFFSET) == 0x1234);
        CHECK(cabi_store((ulong)p, SUP, 3) == 0);
        CHECK(cabi_load((ulong)p, USER) == -1);
        CHECK(vm_att(INVLSID, 0) == NULL);
        CHECK(cabi_set_env(2, 0) == 0);
        CHECK(vm_galloc(V_WORKING, 4096, &(ulong){0}) == EINVAL);
        CHECK(getadsp() == NULL);
        CHECK(as_getsrval64(0x0) == INVLSID); /* 64-bit space at interrupt level */
        {
            caddr_t q = vm_att(h, 0);
            CHECK(q != NULL);
            CHECK(cabi_load((ulong)q + 0x1234, SUP) == 3);
            vm_det(q);
            CHECK(cabi_load((ulong)q + 0x1234, SUP) == -1);
        }
        CHECK(cabi_set_env(0, 1) == 0);
        vm_det(p);
        CHECK(cabi_load((ulong)p, SUP) == -1);
    }
    CHECK(vms_delete(other) == 0);
}

static void segment_registers(void)
{
    adspace_t *adsp;
    vmid_t vmid;
    vmhandle_t h;
    int i;

    CHECK(vms_create(&vmid, V_WORKING, 0, 4096, 0, 0) == 0);
    h = vm_handle(vmid, VM_PRIV);
    adsp = getadsp();
    CHECK(adsp != NULL);
    CHECK(adsp->alloc == 0);
    CHECK(as_att(adsp, h, (caddr_t)0xF0000100UL) == (caddr_t)0x30000100UL);
    CHECK(adsp->alloc == ADSP_MASK(3));
    CHECK(adsp_is_alloc(adsp, 3));
    CHECK(adsp->srval[3] == h);
    CHECK(cabi_store(0x30000100UL, USER, 9) == 0);
    CHECK(as_det(adsp, (caddr_t)0x00000000UL) == EINVAL);
    CHECK(as_det(adsp, (caddr_t)0x10000000UL) == EINVAL);
    CHECK(as_det(adsp, (caddr_t)0x20000000UL) == EINVAL);
    CHECK(as_det(adsp, (caddr_t)0xE0000000UL) == EINVAL);
    CHECK(as_det(adsp, (caddr_t)0x50000000UL) == EINVAL);
    CHECK(as_geth(adsp, (caddr_t)0x50000000UL) == INVLSID);
    CHECK(as_geth(adsp, (caddr_t)0x30000000UL) == h);
    CHECK(as_getsrval(adsp, (caddr_t)0x30000000UL) == h);
    as_puth(adsp, h);
    CHECK(as_det(adsp, (caddr_t)0x30000000UL) == 0);
    CHECK(adsp->alloc == 0);
    CHECK(cabi_load(0x30000100UL, USER) == -1);
    CHECK(as_det(adsp, (caddr_t)0x30000000UL) == EINVAL);

    /* Twelve registers (3..13, 15), then NULL. */
    for (i = 0; i < 12; i++)
        CHECK(as_att(adsp, h, 0) != NULL);
    CHECK(as_att(adsp, h, 0) == NULL);
    CHECK(adsp->alloc == (0x1FFDUL << 16));
    for (i = 3; i < 16; i++)
        if (i != 14)
            CHECK(as_det(adsp, (caddr_t)((ulong)i << SEGSHIFT)) == 0);
    CHECK(adsp->alloc == 0);
    CHECK(vms_delete(vmid) == 0);
}

static void thirty_two_bit_process(void)
{
    vmid_t vmid;
    vmhandle_t h;
    unsigned long long a = 0;
    int i;

    CHECK(cabi_create_process(3, 32) == 0);
    CHECK(cabi_set_env(0, 3) == 0);
    CHECK(vms_create(&vmid, V_WORKING, 0, 4096, 0, 0) == 0);
    h = vm_handle(vmid, VM_PRIV);
    for (i = 0; i < 12; i++) {
        a = as_att64(h, 0);
        CHECK(a != 0 && a < (1ULL << 32));
    }
    CHECK(as_att64(h, 0) == 0);
    CHECK(vmm_errno() == ENOMEM);
    /* A 32-bit space may be asked at interrupt level. */
    CHECK(cabi_set_env(2, 0) == 0);
    CHECK(as_getsrval64(a) == h);
    CHECK(as_getsrval64(1ULL << 32) == INVLSID);
    CHECK(cabi_set_env(0, 3) == 0);
    CHECK(cabi_exit(3) == 0);
    CHECK(cabi_set_env(0, 1) == 0);
    CHECK(vms_delete(vmid) == 0);
}

int main(void)
{
    CHECK(vm_galloc(V_WORKING, 4096, &(ulong){0}) == EINVAL); /* not installed */
    CHECK(getadsp() == NULL);
    CHECK(cabi_init() == 0);
    global_memory();
    objects_and_64bit_services();
    segment_registers();
    thirty_two_bit_process();
    CHECK(cabi_exit(2) == 0);
    CHECK(cabi_check() == 0);
    return check_summary("scenario");
}
