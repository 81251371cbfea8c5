/*
 * Drives libvmm_c through vmm.h alone, the way a C kernel would, over a
 * machine kept in this file's arrays: an in-memory HPT behind PAPR-style
 * callbacks, a 32-entry SLB, a pool of frames with sharer counts and a
 * heap region. Problem-state accesses cannot run on the host, so the test
 * plays their interrupts to vmm_fault and checks what the library did to
 * the SLB and the HPT.
 *
 * Prints "host: N checks, F failures" and exits 0 only when F is 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vmm.h>

static int checks, failures;
#define CHECK(c)                                                                             \
    do {                                                                                     \
        checks++;                                                                            \
        if (!(c)) {                                                                          \
            failures++;                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);           \
        }                                                                                    \
    } while (0)

/* ---- HPT: PTEGS groups of 8 entries (v, r) ---- */
#define PTEGS 2048u
#define HPTE_V 1ull
#define HPTE_R_PP0 0x8000000000000000ull
#define HPTE_R_N 0x4ull
static uint64_t hpt[PTEGS * 8][2];

static int64_t hpt_insert(void *ctx, uint64_t group, int slot, uint64_t v, uint64_t r,
                          uint64_t *ptex) {
    (void)ctx;
    if (group >= PTEGS || slot > 7)
        return VMM_H_PARAMETER;
    for (int s = 0; s < 8; s++) {
        if (slot >= 0 && s != slot)
            continue;
        uint64_t i = group * 8 + (uint64_t)s;
        if (!(hpt[i][0] & HPTE_V)) {
            hpt[i][0] = v;
            hpt[i][1] = r;
            *ptex = i;
            return VMM_H_SUCCESS;
        }
    }
    return VMM_H_PTEG_FULL;
}

static int64_t hpt_remove(void *ctx, uint64_t ptex, int how, uint64_t value, uint64_t *v,
                          uint64_t *r) {
    (void)ctx;
    if (ptex >= PTEGS * 8)
        return VMM_H_PARAMETER;
    uint64_t old = hpt[ptex][0];
    if (!(old & HPTE_V) || (how == VMM_REMOVE_AVPN && (old & ~0x7full) != value) ||
        (how == VMM_REMOVE_ANDCOND && (old & value) != 0))
        return VMM_H_NOT_FOUND;
    *v = old;
    *r = hpt[ptex][1];
    hpt[ptex][0] = 0;
    return VMM_H_SUCCESS;
}

static int64_t hpt_protect(void *ctx, uint64_t ptex, uint64_t avpn, unsigned pp, int no_exec) {
    (void)ctx;
    if (ptex >= PTEGS * 8)
        return VMM_H_PARAMETER;
    uint64_t v = hpt[ptex][0];
    if (!(v & HPTE_V) || (v & ~0x7full) != avpn)
        return VMM_H_NOT_FOUND;
    uint64_t r = hpt[ptex][1] & ~(HPTE_R_PP0 | HPTE_R_N | 3ull);
    if (pp & 4)
        r |= HPTE_R_PP0;
    r |= pp & 3;
    if (no_exec)
        r |= HPTE_R_N;
    hpt[ptex][1] = r;
    return VMM_H_SUCCESS;
}

static int64_t hpt_read(void *ctx, uint64_t ptex, uint64_t *v, uint64_t *r) {
    (void)ctx;
    if (ptex >= PTEGS * 8)
        return VMM_H_PARAMETER;
    *v = hpt[ptex][0];
    *r = hpt[ptex][1];
    return VMM_H_SUCCESS;
}

#ifdef NATIVE_HPT
/* The other way: the library keeps the table itself, in memory, in the
 * architected big-endian format; this kernel only flushes TLBs. */
static unsigned char table[PTEGS * 128] __attribute__((aligned(PTEGS * 128)));
static unsigned flushes;

static void tlb_invalidate(void *ctx, uint64_t ptex, uint64_t v, uint64_t r) {
    (void)ctx;
    (void)r;
    if (ptex < PTEGS * 8 && (v & HPTE_V))
        flushes++;
}

static uint64_t be64(const unsigned char *b) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | b[i];
    return x;
}

static unsigned valid_hptes(void) {
    unsigned n = 0;
    for (unsigned i = 0; i < PTEGS * 8; i++)
        n += (be64(table + 16 * i) & HPTE_V) != 0;
    return n;
}
#else
static unsigned valid_hptes(void) {
    unsigned n = 0;
    for (unsigned i = 0; i < PTEGS * 8; i++)
        n += (hpt[i][0] & HPTE_V) != 0;
    return n;
}
#endif

/* ---- SLB: 32 hardware entries; the kernel keeps 0 and 1 for itself ---- */
#define SLB_SIZE 32u
#define SLB_BASE 2u
#define SLB_V 0x8000000ull
static uint64_t slb[SLB_SIZE][2];

static void slb_load(void *ctx, size_t index, uint64_t esid_word, uint64_t vsid_word) {
    (void)ctx;
    slb[index][0] = esid_word;
    slb[index][1] = vsid_word;
}

static void slb_read(void *ctx, size_t index, uint64_t *esid_word, uint64_t *vsid_word) {
    (void)ctx;
    *esid_word = slb[index][0];
    *vsid_word = slb[index][1];
}

static void slb_invalidate(void *ctx, uint64_t ea, int one_tb) {
    (void)ctx;
    unsigned shift = one_tb ? 40 : 28;
    for (unsigned i = 0; i < SLB_SIZE; i++)
        if ((slb[i][0] & SLB_V) && (slb[i][0] >> shift) == (ea >> shift))
            slb[i][0] = 0;
}

static void slb_invalidate_from(void *ctx, size_t first) {
    (void)ctx;
    for (size_t i = first; i < SLB_SIZE; i++)
        slb[i][0] = 0;
}

static int slb_maps(uint64_t ea) {
    for (unsigned i = SLB_BASE; i < SLB_SIZE; i++)
        if ((slb[i][0] & SLB_V) && (slb[i][0] >> 28) == (ea >> 28))
            return 1;
    return 0;
}

/* ---- Frames: NFRAMES frames at fake real addresses from FRAME_BASE ---- */
#define NFRAMES 512u
#define FRAME_BASE 0x10000000ull
static unsigned char frames[NFRAMES][4096] __attribute__((aligned(4096)));
static uint32_t sharers[NFRAMES];
static unsigned zeroed, copied;

static int frame_index(uint64_t pa, unsigned *i) {
    if (pa & 0xfff)
        return VMM_FRAME_MISALIGNED;
    if (pa < FRAME_BASE || pa >= FRAME_BASE + NFRAMES * 4096ull)
        return VMM_FRAME_OUT_OF_RANGE;
    *i = (unsigned)((pa - FRAME_BASE) >> 12);
    return 0;
}

static int frame_alloc(void *ctx, uint64_t *pa) {
    (void)ctx;
    for (unsigned i = 0; i < NFRAMES; i++)
        if (!sharers[i]) {
            sharers[i] = 1;
            *pa = FRAME_BASE + i * 4096ull;
            return 0;
        }
    return 1;
}

static int frame_free(void *ctx, uint64_t pa) {
    (void)ctx;
    unsigned i;
    int rc = frame_index(pa, &i);
    if (rc)
        return rc;
    if (!sharers[i])
        return VMM_FRAME_NOT_ALLOCATED;
    sharers[i]--;
    return 0;
}

static int frame_share(void *ctx, uint64_t pa) {
    (void)ctx;
    unsigned i;
    int rc = frame_index(pa, &i);
    if (rc)
        return rc;
    if (!sharers[i])
        return VMM_FRAME_NOT_ALLOCATED;
    sharers[i]++;
    return 0;
}

static uint32_t frame_sharers(void *ctx, uint64_t pa) {
    (void)ctx;
    unsigned i;
    return frame_index(pa, &i) ? 0 : sharers[i];
}

static int frame_zero(void *ctx, uint64_t pa) {
    (void)ctx;
    unsigned i;
    int rc = frame_index(pa, &i);
    if (rc)
        return rc;
    if (!sharers[i])
        return VMM_FRAME_NOT_ALLOCATED;
    memset(frames[i], 0, 4096);
    zeroed++;
    return 0;
}

static int frame_copy(void *ctx, uint64_t dst, uint64_t src) {
    (void)ctx;
    unsigned d, s;
    int rc = frame_index(dst, &d);
    if (rc || (rc = frame_index(src, &s)))
        return rc;
    if (!sharers[d] || !sharers[s])
        return VMM_FRAME_NOT_ALLOCATED;
    memcpy(frames[d], frames[s], 4096);
    copied++;
    return 0;
}

static uint64_t frame_free_count(void *ctx) {
    (void)ctx;
    uint64_t n = 0;
    for (unsigned i = 0; i < NFRAMES; i++)
        n += !sharers[i];
    return n;
}

static unsigned char heap[4u << 20] __attribute__((aligned(64)));
static int warnings;

static void log_cb(void *ctx, int level, const char *msg, size_t len) {
    (void)ctx;
    if (level <= VMM_LOG_WARN) {
        warnings++;
        fprintf(stderr, "libvmm: %.*s\n", (int)len, msg);
    }
}

int main(void) {
    struct vmm_platform p;
    memset(&p, 0, sizeof p);
    p.ctx = &p;
    p.hpt_ptegs = PTEGS;
#ifdef NATIVE_HPT
    p.hpt_table = table;
    p.tlb_invalidate = tlb_invalidate;
    (void)hpt_insert;
    (void)hpt_remove;
    (void)hpt_protect;
    (void)hpt_read;
#else
    p.hpt_insert = hpt_insert;
    p.hpt_remove = hpt_remove;
    p.hpt_protect = hpt_protect;
    p.hpt_read = hpt_read;
#endif
    p.slb_entries = SLB_SIZE - SLB_BASE;
    p.slb_index_base = SLB_BASE;
    p.slb_load = slb_load;
    p.slb_read = slb_read;
    p.slb_invalidate = slb_invalidate;
    p.slb_invalidate_from = slb_invalidate_from;
    p.frame_alloc = frame_alloc;
    p.frame_free = frame_free;
    p.frame_share = frame_share;
    p.frame_sharers = frame_sharers;
    p.frame_zero = frame_zero;
    p.frame_copy = frame_copy;
    p.frame_free_count = frame_free_count;
    p.heap = heap;
    p.heap_size = sizeof heap;
    p.log = log_cb;

    /* The kernel's own SLB entries below the base, never touched. */
    slb[0][0] = 0xc000000000000000ull | SLB_V;
    slb[0][1] = 0x1234000ull;

    /* Before vmm_create: refusals, nothing built. */
    uint64_t before_free = frame_free_count(NULL);
    CHECK(vmm_process_create(1, VMM_MODEL_64) == VMM_ENOTINIT);
    ulong k0 = 0;
    CHECK(vm_galloc(V_WORKING, 4096, &k0) == EINVAL && k0 == 0);
    CHECK(vmm_create(NULL, 0) == VMM_EINVAL);
    struct vmm_platform incomplete = p;
    incomplete.frame_zero = NULL;
    CHECK(vmm_create(&incomplete, 0) == VMM_EINVAL);
    struct vmm_platform both = p; /* a table and the calls: which one? */
    both.hpt_table = hpt;
    both.hpt_read = hpt_read;
    CHECK(vmm_create(&both, 0) == VMM_EINVAL);
    struct vmm_platform small = p;
    small.heap_size = 4096;
    CHECK(vmm_create(&small, 0) == VMM_EINVAL);

    CHECK(vmm_create(&p, 0) == VMM_OK);
    CHECK(vmm_create(&p, 0) == VMM_EEXIST);

    /* A process, its environment, the switch. */
    CHECK(vmm_process_create(1, VMM_MODEL_64) == VMM_OK);
    CHECK(vmm_process_create(1, VMM_MODEL_64) == VMM_EEXIST);
    CHECK(vmm_process_create(3, 7) == VMM_EINVAL);
    CHECK(vmm_set_environment(VMM_ENV_PROCESS, 9) == VMM_ENOENT);
    CHECK(vmm_set_environment(VMM_ENV_PROCESS, 1) == VMM_OK);
    CHECK(vmm_switch_to_process(9) == VMM_ENOENT);
    CHECK(vmm_switch_to_process(1) == VMM_OK);

    /* Global memory the process may read, attached one page of two. */
    ulong k = 0;
    CHECK(vm_galloc(V_WORKING | V_UREAD, 8192, &k) == 0);
    CHECK(k == 0xF100000000000000ul);
    void *uaddr = NULL;
    CHECK(vm_guatt((void *)k, 4096, VM_UNPRIV, VU_ANYWHERE, &uaddr) == 0);
    uint64_t u = (uint64_t)(uintptr_t)uaddr;
    CHECK(u == 0x0700000000000000ull);

    /* The process touches it: a segment miss, then a page fault. */
    struct vmm_fault_report rep;
    memset(&rep, 0, sizeof rep);
    CHECK(!slb_maps(u));
    CHECK(vmm_fault(0x380, u, 0, 1, &rep) == VMM_RESOLVED);
    CHECK(slb_maps(u));
    unsigned hptes = valid_hptes(), zero_before = zeroed;
    CHECK(vmm_fault(0x300, u + 8, 0x40000000ull /* DSISR NOPTE */, 1, &rep) == VMM_RESOLVED);
    CHECK(valid_hptes() == hptes + 1);
    CHECK(zeroed == zero_before + 1);
    CHECK(frame_free_count(NULL) < before_free);
    /* Read-only for the process: its store is refused, nothing added. */
    hptes = valid_hptes();
    CHECK(vmm_fault(0x300, u + 8, 0x08000000ull /* DSISR PROTFAULT */ | 0x02000000ull /* store */,
                    1, &rep) == VMM_FAULT);
    CHECK(rep.reason == VMM_FAULT_PROTECTION && rep.access == VMM_ACCESS_STORE);
    CHECK(valid_hptes() == hptes);

    /* The second page is not attached: a fault the library reports. */
    CHECK(vmm_fault(0x300, u + 4096, 0x40000000ull, 1, &rep) == VMM_FAULT);
    CHECK(rep.ea == u + 4096 && rep.reason == VMM_FAULT_OUT_OF_RANGE);
    CHECK(rep.access == VMM_ACCESS_LOAD);
    /* No segment at all there. */
    CHECK(vmm_fault(0x380, 0x0500000000000000ull, 0, 1, &rep) == VMM_FAULT);
    CHECK(rep.reason == VMM_FAULT_NO_SEGMENT);
    CHECK(vmm_fault(0x500, u, 0, 1, &rep) == VMM_EINVAL);

    /* A memory object, its handle, a 64-bit attachment, a hold. */
    vmid_t vmid = -1;
    CHECK(vms_create(&vmid, V_WORKING, 0, 1 << 20, 0, 0) == 0 && vmid > 0);
    vmhandle_t h = vm_handle(vmid, VM_PRIV); /* key 0: PP 00 is read-write */
    CHECK(h != INVLSID);
    CHECK(vm_handle(-1, VM_UNPRIV) == INVLSID);
    unsigned long long a = as_att64(h, 0x1000);
    CHECK(a != 0 && (a & 0xfffffff) == 0x1000);
    CHECK(vmm_fault(0x380, a, 0, 1, &rep) == VMM_RESOLVED);
    CHECK(vmm_fault(0x300, a, 0x40000000ull | 0x02000000ull /* store */, 1, &rep) ==
          VMM_RESOLVED);
    vmhandle_t g = as_geth64(a);
    CHECK(g == h);
    CHECK(as_puth64(a, g) == 0);
    CHECK(as_puth64(a, g) == EINVAL); /* no hold left */
    CHECK(as_getsrval64(a) == h);

    /* fork shares the attachment; the child goes again. */
    CHECK(vmm_process_fork(1, 2) == VMM_OK);
    CHECK(vmm_process_fork(1, 2) == VMM_EEXIST);
    CHECK(vmm_process_exit(2) == VMM_OK);
    CHECK(vmm_process_exit(2) == VMM_ENOENT);

    /* Teardown gives every frame back. */
#ifdef NATIVE_HPT
    unsigned flushes_before = flushes;
#endif
    CHECK(as_det64(a) == 0);
    CHECK(as_det64(a) == EINVAL);
    CHECK(vms_delete(vmid) == 0);
    CHECK(vm_gudet((void *)k, uaddr, 4096, VU_ANYWHERE) == 0);
    CHECK(vm_gfree(k, 8192) == 0);
    CHECK(vm_gfree(k, 8192) == EINVAL);
    CHECK(vmm_switch_to_kernel() == VMM_OK);
    CHECK(vmm_set_environment(VMM_ENV_KERNEL_PROCESS, 0) == VMM_OK);
    CHECK(vmm_process_exit(1) == VMM_OK);
    CHECK(frame_free_count(NULL) == before_free);
    CHECK(valid_hptes() == 0);
#ifdef NATIVE_HPT
    /* Taking the pages down flushed their translations. */
    CHECK(flushes > flushes_before);
#endif

    /* The kernel's own SLB entry below the base was never touched. */
    CHECK(slb[0][0] == (0xc000000000000000ull | SLB_V) && slb[0][1] == 0x1234000ull);

#ifdef NATIVE_HPT
    printf("host (in-memory HPT): %d checks, %d failures\n", checks, failures);
#else
    printf("host (PAPR HPT calls): %d checks, %d failures\n", checks, failures);
#endif
    return failures != 0;
}
