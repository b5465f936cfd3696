/* Seeded randomness for the simulator (rng.h). */
#include "rng.h"

#include <math.h>
#include <sodium.h>

uint64_t sim_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sim_rng_init(sim_rng *rng, uint64_t seed, enum sim_stream tag, uint64_t index)
{
    /* Three chained splitmix steps mix seed, tag and index into one state. */
    uint64_t st = seed;
    uint64_t h = sim_splitmix64(&st);
    st = h ^ ((uint64_t)tag * 0xd6e8feb86659fd93ull);
    h = sim_splitmix64(&st);
    st = h ^ index;
    for (int i = 0; i < 4; i++)
        rng->s[i] = sim_splitmix64(&st);
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        rng->s[0] = 1; /* xoshiro's one forbidden state */
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(sim_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(sim_rng *rng, uint64_t bound)
{
    /* Reject the top sliver that would bias the modulo; at most a few rounds
     * in practice, bounded to keep every loop finite. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t v = sim_rng_next(rng);
    for (int i = 0; i < 64 && v >= limit; i++)
        v = sim_rng_next(rng);
    return v % bound;
}

double sim_rng_unit(sim_rng *rng)
{
    return (double)(sim_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

double sim_rng_exp(sim_rng *rng, double rate)
{
    /* 1 - u is in (0, 1], so the log is finite. */
    return -log(1.0 - sim_rng_unit(rng)) / rate;
}

void sim_rng_fill(sim_rng *rng, uint8_t *buf, size_t len)
{
    while (len > 0) {
        uint64_t v = sim_rng_next(rng);
        size_t n = len < 8 ? len : 8;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(v >> (8 * i));
        buf += n;
        len -= n;
    }
}

void sim_rng_env_cb(void *ctx, uint8_t *buf, size_t len)
{
    sim_rng_fill(ctx, buf, len);
}

/* libsodium's hooks take no context, so the stream is a file-level global. */
static sim_rng sodium_rng;

static const char *impl_name(void)
{
    return "ferry-sim-seeded";
}

static uint32_t impl_random(void)
{
    return (uint32_t)(sim_rng_next(&sodium_rng) >> 32);
}

static void impl_buf(void *const buf, const size_t size)
{
    sim_rng_fill(&sodium_rng, buf, size);
}

static randombytes_implementation sim_impl = {
    .implementation_name = impl_name,
    .random = impl_random,
    .buf = impl_buf,
};

int sim_rng_install_sodium(uint64_t seed)
{
    sim_rng_init(&sodium_rng, seed, SIM_STREAM_SODIUM, 0);
    if (randombytes_set_implementation(&sim_impl) != 0)
        return -1;
    return 0;
}
