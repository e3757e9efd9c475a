/*
 * insn_count.c: a QEMU 7.2 TCG plugin that counts the guest instructions executed in
 * each measured region of the firmware examples.
 *
 * A region starts when the first instruction of `deq_mark_begin` executes and ends when
 * the first instruction of `deq_mark_end` executes. Its count is the number of guest
 * instructions executed from the first instruction of `deq_mark_begin` (included) to
 * the first instruction of `deq_mark_end` (excluded): the solve itself plus the few
 * instructions of `deq_mark_begin`, its return and the call of `deq_mark_end`.
 *
 * Every translated instruction gets an inline "add 1" to a running counter (no helper
 * call, so it costs little), and only the two marker instructions get a callback,
 * which reads the counter. Both markers read the counter the same way relative to their
 * own inline add, so the difference does not depend on the order in which QEMU emits
 * the two. The count is exact: it counts executed instructions, not translated
 * blocks, so a block left early is counted only as far as it ran. (A Thumb instruction
 * in an IT block whose condition fails counts as executed, as on the hardware.)
 *
 * Arguments: begin=0xADDR,end=0xADDR (the symbols' addresses, Thumb bit cleared).
 * At exit it prints, through qemu_plugin_outs (QEMU's stderr), one line per region:
 *     insn_count <index> <count>
 * and a summary line
 *     insn_count_regions <n>
 * A marker out of order (begin twice, end without begin, a region still open at exit)
 * prints a line starting "insn_count_error" instead of being silently dropped.
 *
 * Build (no QEMU headers needed: the few declarations used are below, as in QEMU 7.2's
 * include/qemu/qemu-plugin.h, plugin API version 1):
 *     gcc -shared -fPIC -O2 -o insn_count.so insn_count.c
 * Run:
 *     qemu-system-arm ... -icount shift=0 -plugin file=insn_count.so,begin=0x..,end=0x..
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The subset of QEMU 7.2's include/qemu/qemu-plugin.h used here. ---- */

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op, void *ptr,
                                                uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

/* QEMU 7.2: QEMU_PLUGIN_VERSION is 1 (and QEMU_PLUGIN_MIN_VERSION 0). */
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* ---- The plugin. ---- */

static uint64_t begin_addr, end_addr;
static bool have_begin, have_end;

/* Instructions executed so far (inline adds: the guest has one vCPU). */
static uint64_t executed;
/* Counter value at the open region's begin marker. */
static uint64_t start;
static bool open_region;
/* One count per closed region. */
static uint64_t *counts;
static size_t n_counts, cap_counts;
/* Out-of-order markers seen (reported at exit). */
static uint64_t errors;

static void on_begin(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    if (open_region) {
        errors++;
    }
    open_region = true;
    start = executed;
}

static void on_end(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    if (!open_region) {
        errors++;
        return;
    }
    open_region = false;
    if (n_counts == cap_counts) {
        size_t cap = cap_counts ? 2 * cap_counts : 64;
        uint64_t *p = realloc(counts, cap * sizeof *p);
        if (!p) {
            errors++;
            return;
        }
        counts = p;
        cap_counts = cap;
    }
    counts[n_counts++] = executed - start;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
        if (va == begin_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (va == end_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    char line[128];
    for (size_t i = 0; i < n_counts; i++) {
        snprintf(line, sizeof line, "insn_count %zu %" PRIu64 "\n", i, counts[i]);
        qemu_plugin_outs(line);
    }
    if (open_region) {
        qemu_plugin_outs("insn_count_error region still open at exit\n");
    }
    if (errors) {
        snprintf(line, sizeof line, "insn_count_error %" PRIu64 " markers out of order\n", errors);
        qemu_plugin_outs(line);
    }
    snprintf(line, sizeof line, "insn_count_regions %zu\n", n_counts);
    qemu_plugin_outs(line);
    snprintf(line, sizeof line, "insn_count_total %" PRIu64 "\n", executed);
    qemu_plugin_outs(line);
    free(counts);
}

static bool parse_addr(const char *s, uint64_t *out)
{
    char *end;
    if (!*s) {
        return false;
    }
    unsigned long long v = strtoull(s, &end, 0);
    if (*end) {
        return false;
    }
    *out = (uint64_t)v & ~(uint64_t)1; /* Thumb bit */
    return true;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "begin=", 6) == 0 && parse_addr(a + 6, &begin_addr)) {
            have_begin = true;
        } else if (strncmp(a, "end=", 4) == 0 && parse_addr(a + 4, &end_addr)) {
            have_end = true;
        } else {
            fprintf(stderr, "insn_count: bad argument '%s' (want begin=0xADDR,end=0xADDR)\n", a);
            return -1;
        }
    }
    if (!have_begin || !have_end || begin_addr == end_addr) {
        fprintf(stderr, "insn_count: need begin=0xADDR and end=0xADDR (distinct)\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
