/* wkv.h: the WKV recurrence of each RWKV version, one token at a time over the state. */
#ifndef RWKV_WKV_H
#define RWKV_WKV_H

#include <stddef.h>

/* v4, per channel: numerically stable ratio of decayed sums (aa / bb with log scale pp).
 * u = time_first, w = time_decay (already -exp). Writes wkv (C) and updates aa, bb, pp. */
void rwkv_wkv4(size_t C, const float * u, const float * w, const float * k, const float * v,
               float * aa, float * bb, float * pp, float * wkv);

/* v5 and v6: per head a [key][value] matrix S. out_j = sum_i r_i (u_i k_i v_j + S_ij);
 * then S_ij = k_i v_j + w_i S_ij. u and w are per channel (C = H * N). */
void rwkv_wkv5(size_t H, size_t N, const float * r, const float * k, const float * v,
               const float * u, const float * w, float * S, float * out);

/* v7: per head a [value][key] matrix S.
 * S_ij = S_ij w_j + (sum_p S_ip a_p) b_j + v_i k_j; out_i = sum_j S_ij r_j. */
void rwkv_wkv7(size_t H, size_t N, const float * r, const float * w, const float * k, const float * v,
               const float * a, const float * b, float * S, float * out);

#endif
