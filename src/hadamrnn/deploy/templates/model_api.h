/* What every model's C offers (hadamrnn.deploy.codegen writes it into hadamrnn_model.h). */
typedef struct {
    hrnn_state_t h[HRNN_N];
} hrnn_state;

void hrnn_reset(hrnn_state *state);
/* One step; x holds HRNN_D integers in [HRNN_INPUT_MIN, HRNN_INPUT_MAX] (token models: x[0] is the id). */
void hrnn_step(hrnn_state *state, const int32_t *x);
/* The HRNN_C integer logits of the current state. */
void hrnn_logits(const hrnn_state *state, hrnn_logit_t *logits);
/* A whole sequence of `steps` inputs (steps * HRNN_D integers, or steps token ids): fills the
   logits after the last step and returns the predicted class. */
int hrnn_sequence(const int32_t *x, int32_t steps, hrnn_logit_t *logits);
