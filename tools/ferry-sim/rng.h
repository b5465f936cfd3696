/* The simulator's only source of randomness: xoshiro256** streams derived
 * from the one --seed by splitmix64, and a libsodium randombytes
 * implementation drawing from such a stream, so keys and nonces replay too. */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;

/* Stream tags, so that e.g. the topology does not change with the workload. */
enum sim_stream {
    SIM_STREAM_WORLD = 1,
    SIM_STREAM_WORKLOAD,
    SIM_STREAM_CONTACTS,
    SIM_STREAM_MEDIUM,
    SIM_STREAM_SODIUM,
    SIM_STREAM_NODE,
    SIM_STREAM_IDENT,
    SIM_STREAM_CHURN,
    SIM_STREAM_ADVERSARY
};

uint64_t sim_splitmix64(uint64_t *state);
/* Seed rng for stream (tag, index) of the run seeded with seed. */
void sim_rng_init(sim_rng *rng, uint64_t seed, enum sim_stream tag, uint64_t index);
uint64_t sim_rng_next(sim_rng *rng);
/* Uniform in [0, bound), without modulo bias; bound > 0. */
uint64_t sim_rng_below(sim_rng *rng, uint64_t bound);
/* Uniform double in [0, 1). */
double sim_rng_unit(sim_rng *rng);
/* Exponential with the given rate (> 0), in the rate's time unit. */
double sim_rng_exp(sim_rng *rng, double rate);
void sim_rng_fill(sim_rng *rng, uint8_t *buf, size_t len);
/* fe_env-compatible callback: ctx is a sim_rng. */
void sim_rng_env_cb(void *ctx, uint8_t *buf, size_t len);

/* Make libsodium draw from stream SIM_STREAM_SODIUM of seed. Must run before
 * sodium_init(). 0, or -1 if libsodium refused. */
int sim_rng_install_sodium(uint64_t seed);

#endif
