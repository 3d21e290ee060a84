/* eval.h: the forward pass over a context. */
#ifndef RWKV_EVAL_H
#define RWKV_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "context.h"

/* Evaluates tokens (already validated) in chunks of at most chunk_size, starting from
 * state_in (NULL: fresh). Writes the final state and the logits after the last token when
 * the pointers are not NULL. The context's offloaded layers (ctx->gpu) run on the GPU. False
 * only when the GPU fails (ctx->error says how); state_out is then unspecified. */
bool rwkv_eval_tokens(struct rwkv_context * ctx, const uint32_t * tokens, size_t n_tokens, size_t chunk_size,
                      const float * state_in, float * state_out, float * logits_out);

/* The same, with the logits after every token in logits_all (n_tokens x n_vocab). */
bool rwkv_eval_tokens_all_logits(struct rwkv_context * ctx, const uint32_t * tokens, size_t n_tokens,
                                 const float * state_in, float * state_out, float * logits_all);

#endif
