/* Sums of int8 levels times int16 values, two multiply-adds an instruction (SMLAD), on cores with the
   DSP extension where the model's bounds allow it (HRNN_DSP_DOT; hadamrnn.deploy.codegen writes this
   into every family's hadamrnn_model.c). */
#if HRNN_DSP_DOT
#include <string.h>
#define QUADS(length) (((length) + 3) / 4)  /* words of four levels per row */

static inline uint32_t pair(int32_t low, int32_t high) {
    return (uint32_t)(uint16_t)low | ((uint32_t)(uint16_t)high << 16);
}

/* The values v[0 .. length) as int16 pairs for dot(), zero past length: word 2q holds v[4q] (low half)
   and v[4q + 2], word 2q + 1 v[4q + 1] and v[4q + 3], the halves SXTB16 makes of a word of four
   levels (bytes 0 and 2, then, rotated by 8 bits, bytes 1 and 3). */
#define TO_PAIRS(pairs, v, length)                                                                      \
    do {                                                                                                \
        int32_t q_;                                                                                     \
        for (q_ = 0; q_ < QUADS(length); q_++) {                                                        \
            const int32_t k_ = 4 * q_;                                                                  \
            (pairs)[2 * q_] = pair((v)[k_], k_ + 2 < (length) ? (v)[k_ + 2] : 0);                       \
            (pairs)[2 * q_ + 1] = pair(k_ + 1 < (length) ? (v)[k_ + 1] : 0, k_ + 3 < (length) ? (v)[k_ + 3] : 0); \
        }                                                                                               \
    } while (0)

/* Bytes 1 and 3 of a word, sign-extended to halves: one SXTB16 with its rotation (which gcc does
   not fold from a C rotation). */
static inline int32_t odd_bytes(uint32_t levels) {
    int32_t halves;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(halves) : "r"(levels));
    return halves;
}

/* sum_k row[k] v[k] for the pairs of v, in int32 (the caller's bound says it fits); the loop is
   unrolled, so the pairs stay in registers from row to row. A row is read a word at a time: its
   last word may reach 3 levels past it (tables that dot() reads have 3 levels more at their end). */
static inline int32_t dot(const int8_t *row, const uint32_t *pairs, int32_t length) {
    int32_t sum = 0, q;
#pragma GCC unroll 16
    for (q = 0; q < QUADS(length); q++) {
        uint32_t levels;
        memcpy(&levels, row + 4 * q, 4);  /* one LDR: the core reads unaligned words */
        sum = __smlad((int32_t)__sxtb16((int32_t)levels), (int32_t)pairs[2 * q], sum);
        if (4 * q + 1 < length) sum = __smlad(odd_bytes(levels), (int32_t)pairs[2 * q + 1], sum);  /* else zeros */
    }
    return sum;
}
#endif
