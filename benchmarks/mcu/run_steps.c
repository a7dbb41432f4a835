/* benchmarks/mcu.py's driver: STEPS recurrent steps on a fixed input, then exit. Executed
   instructions are counted for two values of STEPS; their difference divided by the difference of
   STEPS is the cost of one step. With LOGITS, the read-out follows the last step (a whole window). */
#include <stdio.h>
#include <stdint.h>
#ifdef DENSE
void dense_step(const int32_t *x);
int dense_state(int32_t i);
#define INPUTS 8
#else
#include "hadamrnn_model.h"
#define INPUTS HRNN_D
#endif

int main(void) {
    int32_t x[INPUTS], t, i;
    for (i = 0; i < INPUTS; i++) x[i] = 100 * (i + 1) - 350;
#ifdef DENSE
    for (t = 0; t < STEPS; t++) {
        x[0] = (t * 37) % 700 - 350;
        dense_step(x);
    }
    printf("%d\n", dense_state(0));
#else
    {
        hrnn_state state;
        hrnn_reset(&state);
        for (t = 0; t < STEPS; t++) {
            x[0] = (t * 37) % 700 - 350;
            hrnn_step(&state, x);
        }
#ifdef LOGITS
        {
            hrnn_logit_t logits[HRNN_C];
            hrnn_logits(&state, logits);
            printf("%d\n", (int)logits[0]);
        }
#endif
        printf("%d\n", (int)state.h[0]);
    }
#endif
    return 0;
}
