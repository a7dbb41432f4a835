/* What every model's C shares (hadamrnn.deploy.codegen appends it to hadamrnn_model.c). */
void hrnn_reset(hrnn_state *state) {
    int32_t i;
    for (i = 0; i < HRNN_N; i++) state->h[i] = 0;
}

int hrnn_sequence(const int32_t *x, int32_t steps, hrnn_logit_t *logits) {
    hrnn_state state;
    int32_t t;
    int c, best = 0;
    hrnn_reset(&state);
    for (t = 0; t < steps; t++) hrnn_step(&state, x + (HRNN_TOKENS ? t : t * HRNN_D));
    hrnn_logits(&state, logits);
    if (HRNN_C == 1) return logits[0] > 0;
    for (c = 1; c < HRNN_C; c++) {
        if (logits[c] > logits[best]) best = c;
    }
    return best;
}
