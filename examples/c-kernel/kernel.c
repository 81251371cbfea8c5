/*
 * A small kernel in C that uses the vmm through libvmm_c.a and vmm.h.
 *
 * It boots under QEMU pseries with VOF, reads the RTAS tokens from the
 * device tree, maps its first 128 MiB at 0xc000000000000000 with bolted
 * HPTEs (H_ENTER) under one bolted SLB entry, turns translation on and
 * sends the storage interrupts to vmm_fault. The platform callbacks are
 * hcalls (H_ENTER, H_REMOVE, H_PROTECT, H_READ) and SLB instructions.
 * Then it runs checks in the style of the Rust test harness and powers
 * off: RTAS power-off when every check passed (QEMU exits 0), ibm,os-term
 * otherwise (QEMU exits 1 with -action panic=exit-failure).
 */
#include <stddef.h>
#include <stdint.h>

#include <vmm.h>

/* ---- runtime: what the library and gcc expect from libc ---- */

void *memcpy(void *d, const void *s, size_t n) {
    unsigned char *dp = d;
    const unsigned char *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n) {
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp < sp) {
        while (n--)
            *dp++ = *sp++;
    } else {
        while (n--)
            dp[n] = sp[n];
    }
    return d;
}

void *memset(void *d, int c, size_t n) {
    unsigned char *dp = d;
    while (n--)
        *dp++ = (unsigned char)c;
    return d;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x < *y ? -1 : 1;
    return 0;
}

int bcmp(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* ---- hypervisor calls and the console ---- */

extern int64_t hcall_raw(uint64_t opcode, uint64_t regs[8]);

#define H_REMOVE 0x04
#define H_ENTER 0x08
#define H_READ 0x0c
#define H_PROTECT 0x18
#define H_PUT_TERM_CHAR 0x58
#define KVMPPC_H_RTAS 0xf000
#define H_EXACT (1ull << 39)
#define H_AVPN (1ull << 31)
#define H_ANDCOND (1ull << 30)

static void put(const char *s, size_t n) {
    while (n) {
        size_t k = n < 16 ? n : 16;
        unsigned char b[16] = {0};
        memcpy(b, s, k);
        uint64_t hi = 0, lo = 0;
        for (int i = 0; i < 8; i++) {
            hi = hi << 8 | b[i];
            lo = lo << 8 | b[8 + i];
        }
        uint64_t r[8] = {0, k, hi, lo};
        if (hcall_raw(H_PUT_TERM_CHAR, r) == 0) {
            s += k;
            n -= k;
        }
    }
}

static void puts_(const char *s) { put(s, strlen(s)); }

static void putx(uint64_t x) {
    char b[19] = "0x";
    for (int i = 0; i < 16; i++)
        b[2 + i] = "0123456789abcdef"[(x >> (60 - 4 * i)) & 15];
    put(b, 18);
}

static void putu(uint64_t x) {
    char b[21];
    int i = 20;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    puts_(b + i);
}

/* ---- Open Firmware (before translation) and RTAS ---- */

extern int of_call(uint32_t args, uint32_t entry);
static uint32_t of_entry;

static uint32_t real32(const void *p) { return (uint32_t)((uintptr_t)p & 0x0fffffff); }

static int of_getprop_u32(const char *path, const char *name, uint32_t *out) {
    struct {
        uint32_t service, nargs, nret, cells[6];
    } a = {real32("finddevice"), 1, 1, {real32(path)}};
    if (of_call(real32(&a), of_entry) != 0 || (int32_t)a.cells[1] == -1)
        return -1;
    uint32_t node = a.cells[1];
    uint32_t value = 0;
    a.service = real32("getprop");
    a.nargs = 4;
    a.nret = 1;
    a.cells[0] = node;
    a.cells[1] = real32(name);
    a.cells[2] = real32(&value);
    a.cells[3] = 4;
    if (of_call(real32(&a), of_entry) != 0 || a.cells[4] != 4)
        return -1;
    *out = value;
    return 0;
}

static uint32_t rtas_power_off, rtas_os_term;

static void rtas(uint32_t token, uint32_t nargs, uint32_t a0, uint32_t a1) {
    static struct {
        uint32_t token, nargs, nret, cells[4];
    } args;
    args.token = token;
    args.nargs = nargs;
    args.nret = 1;
    args.cells[0] = a0;
    args.cells[1] = a1;
    uint64_t r[8] = {(uintptr_t)&args & 0x0fffffffffffffffull};
    hcall_raw(KVMPPC_H_RTAS, r);
}

static void power_off(int failed) {
    static const char msg[] = "c-kernel: checks failed";
    if (failed && rtas_os_term)
        rtas(rtas_os_term, 1, real32(msg), 0);
    rtas(rtas_power_off, 2, 0xffffffff, 0xffffffff);
    for (;;)
        ;
}

static void panic(const char *what, uint64_t value) {
    puts_("\nc-kernel: PANIC: ");
    puts_(what);
    puts_(" ");
    putx(value);
    puts_("\n");
    power_off(1);
}

/* ---- the machine: HPT hcalls, SLB instructions, frames ---- */

static int64_t hpt_insert(void *ctx, uint64_t group, int slot, uint64_t v, uint64_t r,
                          uint64_t *ptex) {
    (void)ctx;
    uint64_t regs[8] = {slot < 0 ? 0 : H_EXACT, group * 8 + (slot < 0 ? 0 : (uint64_t)slot), v,
                        r};
    int64_t rc = hcall_raw(H_ENTER, regs);
    if (rc == 0)
        *ptex = regs[0];
    return rc;
}

static int64_t hpt_remove(void *ctx, uint64_t ptex, int how, uint64_t value, uint64_t *v,
                          uint64_t *r) {
    (void)ctx;
    uint64_t flags = how == VMM_REMOVE_AVPN ? H_AVPN : how == VMM_REMOVE_ANDCOND ? H_ANDCOND : 0;
    uint64_t regs[8] = {flags, ptex, value};
    int64_t rc = hcall_raw(H_REMOVE, regs);
    if (rc == 0) {
        *v = regs[0];
        *r = regs[1];
    }
    return rc;
}

static int64_t hpt_read(void *ctx, uint64_t ptex, uint64_t *v, uint64_t *r) {
    (void)ctx;
    uint64_t regs[8] = {0, ptex};
    int64_t rc = hcall_raw(H_READ, regs);
    if (rc == 0) {
        *v = regs[0];
        *r = regs[1];
    }
    return rc;
}

/* H_PROTECT's flags: PP (bits 62:63), N (61), PP0 (55) and the key (low
 * three bits at 52:54, high two at 50:51); it replaces the entry's key
 * too, so the old one is read first. */
static int64_t hpt_protect(void *ctx, uint64_t ptex, uint64_t avpn, unsigned pp, int no_exec) {
    uint64_t v, r;
    int64_t rc = hpt_read(ctx, ptex, &v, &r);
    if (rc)
        return rc;
    uint64_t key_lo = (r >> 9) & 7, key_hi = (r >> 60) & 3; /* HPTE bits 52:54, 2:3 */
    uint64_t flags = H_AVPN | (pp & 3) | (uint64_t)(pp >> 2) << 8 | (no_exec ? 4u : 0u) |
                     key_lo << 9 | key_hi << 12;
    uint64_t regs[8] = {flags, ptex, avpn};
    rc = hcall_raw(H_PROTECT, regs);
    __asm__ volatile("ptesync" ::: "memory");
    return rc;
}

#define SLB_SIZE 32
#define SLB_V 0x8000000ull

static void slb_read(void *ctx, size_t index, uint64_t *esid_word, uint64_t *vsid_word) {
    (void)ctx;
    uint64_t e, v;
    __asm__ volatile("slbmfee %0, %2\n\tslbmfev %1, %2" : "=&r"(e), "=&r"(v) : "r"(index));
    *esid_word = e;
    *vsid_word = v;
}

static void slbie_of(uint64_t esid_word, uint64_t vsid_word) {
    /* RB: the ESID, and B (segment size) and L/LP (page size) of the entry. */
    uint64_t rb = (esid_word & ~0xfffffffull) | (vsid_word >> 62) << 26 | (vsid_word & 0x130);
    __asm__ volatile("slbie %0\n\tisync" ::"r"(rb) : "memory");
}

static void slb_load(void *ctx, size_t index, uint64_t esid_word, uint64_t vsid_word) {
    uint64_t oe, ov;
    slb_read(ctx, index, &oe, &ov);
    if (oe & SLB_V)
        slbie_of(oe, ov);
    __asm__ volatile("slbmte %0, %1\n\tisync" ::"r"(vsid_word), "r"(esid_word) : "memory");
}

static void slb_invalidate(void *ctx, uint64_t ea, int one_tb) {
    (void)ctx;
    uint64_t rb = (ea & ~0xfffffffull) | (one_tb ? 1ull << 26 : 0);
    __asm__ volatile("slbie %0\n\tisync" ::"r"(rb) : "memory");
}

static void slb_invalidate_from(void *ctx, size_t first) {
    for (size_t i = first; i < SLB_SIZE; i++) {
        uint64_t e, v;
        slb_read(ctx, i, &e, &v);
        if (e & SLB_V) {
            slbie_of(e, v);
            __asm__ volatile("slbmte %0, %1\n\tisync" ::"r"(0ull), "r"((uint64_t)i) : "memory");
        }
    }
}

/* Frames: real 64 MiB .. 128 MiB, reached through the linear map. */
#define FRAME_BASE (64ull << 20)
#define NFRAMES 16384u
#define LINEAR 0xc000000000000000ull
static uint32_t sharers[NFRAMES];

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
    static unsigned next;
    for (unsigned n = 0; n < NFRAMES; n++) {
        unsigned i = (next + n) % NFRAMES;
        if (!sharers[i]) {
            sharers[i] = 1;
            next = i + 1;
            *pa = FRAME_BASE + i * 4096ull;
            return 0;
        }
    }
    return 1;
}

static int frame_op(uint64_t pa, int delta) {
    unsigned i;
    int rc = frame_index(pa, &i);
    if (rc)
        return rc;
    if (!sharers[i])
        return VMM_FRAME_NOT_ALLOCATED;
    sharers[i] += (uint32_t)delta;
    return 0;
}

static int frame_free(void *ctx, uint64_t pa) { (void)ctx; return frame_op(pa, -1); }
static int frame_share(void *ctx, uint64_t pa) { (void)ctx; return frame_op(pa, 1); }

static uint32_t frame_sharers(void *ctx, uint64_t pa) {
    (void)ctx;
    unsigned i;
    return frame_index(pa, &i) ? 0 : sharers[i];
}

static int frame_zero(void *ctx, uint64_t pa) {
    (void)ctx;
    int rc = frame_op(pa, 0);
    if (!rc)
        memset((void *)(LINEAR | pa), 0, 4096);
    return rc;
}

static int frame_copy(void *ctx, uint64_t dst, uint64_t src) {
    (void)ctx;
    int rc = frame_op(dst, 0);
    if (!rc)
        rc = frame_op(src, 0);
    if (!rc)
        memcpy((void *)(LINEAR | dst), (const void *)(LINEAR | src), 4096);
    return rc;
}

static uint64_t frame_free_count(void *ctx) {
    (void)ctx;
    uint64_t n = 0;
    for (unsigned i = 0; i < NFRAMES; i++)
        n += !sharers[i];
    return n;
}

static void log_cb(void *ctx, int level, const char *msg, size_t len) {
    (void)ctx;
    if (level <= VMM_LOG_WARN) {
        puts_("libvmm: ");
        put(msg, len);
        puts_("\n");
    }
}

static void abort_cb(void *ctx, const char *msg, size_t len) {
    (void)ctx;
    puts_("\n");
    put(msg, len);
    panic("libvmm aborted", 0);
}

/* ---- the linear map and translation ---- */

#define LINEAR_VSID (1ull << 37) /* above every VSID the vmm hands out */
#define LINEAR_BYTES (128ull << 20)
static uint64_t ptegs;

static void map_linear(void) {
    /* The HPT's size: the largest PTE index H_READ accepts. */
    ptegs = 1;
    for (;;) {
        uint64_t regs[8] = {0, ptegs * 2 * 8 - 1};
        if (ptegs >= (1ull << 28) || hcall_raw(H_READ, regs) != 0)
            break;
        ptegs *= 2;
    }
    for (uint64_t pa = 0; pa < LINEAR_BYTES; pa += 4096) {
        uint64_t page = pa >> 12; /* within segment 0xc00000000 */
        uint64_t hash = (LINEAR_VSID & 0x7fffffffffull) ^ page;
        uint64_t v = LINEAR_VSID << 12 | ((pa >> 23) << 7) | 0x10 /* bolted */ | 1 /* V */;
        uint64_t r = pa | 0x180 /* R, C */ | 0x10 /* M */; /* PP 00: key 0 read-write */
        uint64_t ptex;
        if (hpt_insert(NULL, hash & (ptegs - 1), -1, v, r, &ptex) != 0 &&
            hpt_insert(NULL, ~hash & (ptegs - 1), -1, v | 2 /* H */, r, &ptex) != 0)
            panic("linear map: both PTEGs full at", pa);
    }
    /* SLB entry 0, below the vmm's: Ks = 0, Kp = 1 (problem state gets
     * nothing from PP 00). */
    uint64_t esid_word = (LINEAR >> 28) << 28 | SLB_V | 0;
    uint64_t vsid_word = LINEAR_VSID << 12 | 0x400;
    __asm__ volatile("slbmte %0, %1\n\tisync" ::"r"(vsid_word), "r"(esid_word) : "memory");
}

static void translation_on(void) {
    uint64_t msr;
    __asm__ volatile("mfmsr %0" : "=r"(msr));
    msr |= 0x30; /* IR | DR */
    __asm__ volatile("mtmsrd %0\n\tisync" ::"r"(msr) : "memory");
}

/* ---- interrupts ---- */

struct trap_frame {
    uint64_t gpr[32];
    uint64_t cr, lr, ctr, xer, srr0, srr1, dar, dsisr, vec;
};
struct kernel_context {
    uint64_t r1, r2, r14_31[18], cr, lr, msr;
};
struct trap_frame trap_frame;
struct kernel_context kernel_context;
uint64_t user_result;
unsigned char trap_stack[16384] __attribute__((aligned(16)));
unsigned char boot_stack[65536] __attribute__((aligned(16)));
__asm__(".globl trap_stack_top\n.set trap_stack_top, trap_stack + 16384\n"
        ".globl boot_stack_top\n.set boot_stack_top, boot_stack + 65536\n");

extern const uint32_t vector_stub[], vector_stub_end[];

static void install_vectors(void) {
    size_t words = (size_t)(vector_stub_end - vector_stub);
    for (uint64_t vec = 0x100; vec < 0x1000; vec += 0x80) {
        if ((vec & 0xff) && vec != 0x380 && vec != 0x480)
            continue;
        uint32_t *to = (uint32_t *)(LINEAR | vec);
        for (size_t i = 0; i < words; i++)
            to[i] = vector_stub[i];
        to[4] = 0x39800000u | (uint32_t)vec; /* li r12, vec */
        for (size_t i = 0; i < words; i += 8)
            __asm__ volatile("dcbst 0, %0\n\tsync\n\ticbi 0, %0" ::"r"(to + i) : "memory");
    }
    __asm__ volatile("sync\n\tisync" ::: "memory");
}

#define MSR_PR (1ull << 14)
/* Changed by c_trap behind the compiler's back (an access that faults
 * calls it), hence volatile. */
static volatile unsigned kernel_faults, user_faults;
static volatile struct vmm_fault_report last_report;
static volatile int last_fault_reason;

/* Called by trap_common in real mode. 0: return to the interrupted
 * context; 1: back to the kernel context enter_user saved. */
int c_trap(struct trap_frame *f) {
    int problem = (f->srr1 & MSR_PR) != 0;
    switch (f->vec) {
    case 0x300:
    case 0x380:
    case 0x400:
    case 0x480: {
        uint64_t ea = f->vec < 0x400 ? f->dar : f->srr0;
        uint64_t status = f->vec == 0x300 ? f->dsisr : f->srr1;
        struct vmm_fault_report rep;
        int rc = vmm_fault(f->vec, ea, status, problem, &rep);
        if (rc == VMM_RESOLVED) {
            if (problem)
                user_faults++;
            else
                kernel_faults++;
            return 0;
        }
        if (problem && rc == VMM_FAULT) {
            last_report.ea = rep.ea;
            last_report.reason = rep.reason;
            last_report.access = rep.access;
            last_fault_reason = rep.reason;
            user_result = ~0ull;
            return 1;
        }
        puts_("c-kernel: kernel fault at ");
        putx(ea);
        puts_(" vector ");
        putx(f->vec);
        puts_(" reason ");
        putu((uint64_t)rep.reason);
        panic(" rc", (uint64_t)rc);
        return 0;
    }
    case 0xc00:
        if (problem) {
            user_result = f->gpr[3];
            return 1;
        }
        break;
    }
    puts_("c-kernel: unexpected interrupt at ");
    putx(f->srr0);
    puts_(" srr1 ");
    putx(f->srr1);
    panic("vector", f->vec);
    return 0;
}

/* Runs problem-state code at pc with r3, r4, r5 = a0, a1, a2 until a
 * system call (answers its r3) or a refused fault (answers ~0). */
extern uint64_t enter_user(uint64_t pc, uint64_t a0, uint64_t msr, uint64_t a1, uint64_t a2);
#define MSR_USER (1ull << 63 | MSR_PR | 1ull << 12 /* ME */ | 0x30 /* IR DR */ | 2 /* RI */)

/* ---- checks ---- */

static unsigned passed, failed;

static void check(const char *name, int ok) {
    puts_("test ");
    puts_(name);
    puts_(ok ? " ... ok\n" : " ... FAILED\n");
    if (ok)
        passed++;
    else
        failed++;
}

static unsigned char heap[8u << 20] __attribute__((aligned(64)));

/* The user program: r3 = address; loads it (or stores r4 there when r5
 * is set) and returns the value with a system call. */
static const uint32_t user_code[] = {
    0x2c250000, /* cmpdi r5, 0 */
    0x41820008, /* beq +8 */
    0xf8830000, /* std r4, 0(r3) */
    0xe8630000, /* ld r3, 0(r3) */
    0x44000002, /* sc */
    0x48000000, /* b . */
};

static void run_checks(void) {
    struct vmm_platform p = {0};
    p.ctx = NULL;
    p.hpt_ptegs = ptegs;
    p.hpt_insert = hpt_insert;
    p.hpt_remove = hpt_remove;
    p.hpt_protect = hpt_protect;
    p.hpt_read = hpt_read;
    p.slb_entries = SLB_SIZE - 1;
    p.slb_index_base = 1;
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
    p.abort = abort_cb;
    uint64_t free0 = frame_free_count(NULL);
    check("vmm_create", vmm_create(&p, 0) == VMM_OK);

    /* Global kernel memory, touched by the kernel: the segment miss and
     * the page fault go to vmm_fault through the vectors. */
    ulong k = 0;
    check("vm_galloc", vm_galloc(V_WORKING | V_UREAD, 3 * 4096, &k) == 0 &&
                           k == 0xF100000000000000ul);
    unsigned kf = kernel_faults;
    volatile uint64_t *kp = (volatile uint64_t *)k;
    kp[0] = 0x1234567890abcdefull;
    kp[512] = 42; /* second page */
    check("kernel_store_resolved", kp[0] == 0x1234567890abcdefull && kp[512] == 42);
    /* A segment miss and a page fault on the first page, a page fault on
     * the second. */
    check("kernel_faults_went_to_vmm_fault", kernel_faults == kf + 3);
    check("zero_filled", kp[1024] == 0);

    /* A 64-bit process with a code segment of its own. */
    check("vmm_process_create", vmm_process_create(1, VMM_MODEL_64) == VMM_OK);
    check("vmm_set_environment", vmm_set_environment(VMM_ENV_PROCESS, 1) == VMM_OK);
    check("vmm_switch_to_process", vmm_switch_to_process(1) == VMM_OK);
    vmid_t code_id = -1;
    check("vms_create", vms_create(&code_id, V_WORKING, 0, 1 << 16, 0, 0) == 0 && code_id > 0);
    vmhandle_t code_h = vm_handle(code_id, VM_PRIV);
    check("vm_handle", code_h != INVLSID);
    unsigned long long code = as_att64(code_h, 0);
    check("as_att64", code != 0 && (code >> 60) == 0);
    caddr_t kcode = vm_att(code_h, 0);
    check("vm_att", kcode != NULL);
    for (size_t i = 0; i < sizeof user_code / 4; i++)
        ((volatile uint32_t *)kcode)[i] = user_code[i];
    for (size_t i = 0; i < sizeof user_code; i += 32)
        __asm__ volatile("dcbst 0, %0\n\tsync\n\ticbi 0, %0" ::"r"(kcode + i) : "memory");
    __asm__ volatile("sync\n\tisync" ::: "memory");
    vm_det(kcode);
    vmhandle_t held = as_geth64(code);
    check("as_geth64", held == code_h);
    check("as_puth64", as_puth64(code, held) == 0 && as_puth64(code, held) == EINVAL);

    /* The global memory, attached to the process read-only (V_UREAD,
     * VM_UNPRIV), read in problem state through the returned address. */
    void *uaddr = NULL;
    check("vm_guatt", vm_guatt((void *)k, 4096, VM_UNPRIV, VU_ANYWHERE, &uaddr) == 0 &&
                          uaddr != NULL);
    unsigned uf = user_faults;
    uint64_t got = enter_user(code, (uint64_t)(uintptr_t)uaddr, MSR_USER, 0, 0);
    check("problem_state_load_through_vm_guatt", got == 0x1234567890abcdefull);
    check("user_faults_resolved", user_faults >= uf + 4); /* ISEG, ISI, DSEG, DSI */

    /* A store there is refused: the fault comes back as a report. */
    last_fault_reason = 0;
    got = enter_user(code, (uint64_t)(uintptr_t)uaddr, MSR_USER, 0, 0); /* again: ok */
    /* r4 = 7, r5 = 1: the program stores first. */
    uint64_t r = enter_user(code, (uint64_t)(uintptr_t)uaddr, MSR_USER, 7, 1);
    check("problem_state_store_refused",
          got == 0x1234567890abcdefull && r == ~0ull &&
              last_fault_reason == VMM_FAULT_PROTECTION &&
              last_report.access == VMM_ACCESS_STORE);
    check("kernel_memory_unchanged", kp[0] == 0x1234567890abcdefull);

    /* Teardown: every frame back. */
    check("vm_gudet", vm_gudet((void *)k, uaddr, 4096, VU_ANYWHERE) == 0);
    check("as_det64", as_det64(code) == 0);
    check("vms_delete", vms_delete(code_id) == 0);
    check("vmm_switch_to_kernel", vmm_switch_to_kernel() == VMM_OK &&
                                      vmm_set_environment(VMM_ENV_KERNEL_PROCESS, 0) == VMM_OK);
    check("vmm_process_exit", vmm_process_exit(1) == VMM_OK);
    check("vm_gfree", vm_gfree(k, 3 * 4096) == 0);
    check("frames_returned", frame_free_count(NULL) == free0);
#ifdef FAIL_TEST
    check("deliberate_failure", 0);
#endif
}

void c_main(uint32_t of) {
    of_entry = of;
    puts_("\nc-kernel: started\n");
    if (of_getprop_u32("/rtas", "power-off", &rtas_power_off) != 0)
        panic("no /rtas power-off token", 0);
    of_getprop_u32("/rtas", "ibm,os-term", &rtas_os_term);
    map_linear();
    puts_("c-kernel: HPT ");
    putu(ptegs);
    puts_(" PTEGs, linear map of 128 MiB bolted\n");
    install_vectors();
    translation_on();
    puts_("c-kernel: translation on\n");
    run_checks();
    puts_("\ntest result: ");
    puts_(failed ? "FAILED" : "ok");
    puts_(". ");
    putu(passed);
    puts_(" passed; ");
    putu(failed);
    puts_(" failed\n");
    power_off(failed != 0);
}
