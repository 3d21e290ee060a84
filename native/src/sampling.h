/* sampling.h: the sampler's random number generator (xoshiro256**, seeded through splitmix64),
 * kept apart so its bit-exact output is defined in one place: same seed, same numbers on every
 * platform. The sampler itself is declared in rwkv.h and lives in sampling.c. */
#ifndef RWKV_SAMPLING_H
#define RWKV_SAMPLING_H

#include <stdint.h>

/* xoshiro256** 1.0 (Blackman and Vigna, https://prng.di.unimi.it/xoshiro256starstar.c). */
struct rwkv_rng {
    uint64_t s[4];
};

/* Fills the four state words with splitmix64(seed), splitmix64 of that, ... as the
 * xoshiro authors recommend; never all zero. */
void rwkv_rng_seed(struct rwkv_rng * rng, uint64_t seed);

uint64_t rwkv_rng_next(struct rwkv_rng * rng);

/* Uniform in [0, 1): the top 53 bits of rwkv_rng_next times 2^-53. */
double rwkv_rng_uniform(struct rwkv_rng * rng);

/* A seed from the clock and addresses (ASLR), for RWKV_SAMPLING_SEED_RANDOM. `salt` differs
 * between calls (an object address, a counter) so two samplers created in the same
 * nanosecond still differ. Never returns RWKV_SAMPLING_SEED_RANDOM itself. */
uint64_t rwkv_rng_entropy_seed(const void * salt, uint64_t counter);

#endif
