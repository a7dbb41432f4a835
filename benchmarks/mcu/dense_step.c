/* The reference point of benchmarks/mcu.py: one plain dense recurrent step with int8 weights and
   int16 states, h = saturate(round((W h + U x) / 2^SHIFT) + b), int32 accumulators.
   dense_weights.h (written by the benchmark) defines N, D, BITS, SHIFT, W, U, B. */
#include <stdint.h>
#include "dense_weights.h"

static int16_t h[N], next[N];

void dense_step(const int32_t *x) {
    int32_t i, j;
    for (i = 0; i < N; i++) {
        int32_t acc = 0;
        for (j = 0; j < N; j++) acc += (int32_t)W[i * N + j] * h[j];
        for (j = 0; j < D; j++) acc += (int32_t)U[i * D + j] * x[j];
        acc = ((acc + (1 << (SHIFT - 1))) >> SHIFT) + B[i];
        next[i] = (int16_t)(acc < -(1 << (BITS - 1)) ? -(1 << (BITS - 1)) : (acc > (1 << (BITS - 1)) - 1 ? (1 << (BITS - 1)) - 1 : acc));
    }
    for (i = 0; i < N; i++) h[i] = next[i];
}

int dense_state(int32_t i) {
    return h[i];
}
