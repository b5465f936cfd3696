/* What the core needs from its surroundings, injected so that the simulator
 * can replay a run bit for bit: randomness. Time is passed to every call. */
#ifndef FE_ENV_H
#define FE_ENV_H

#include <stddef.h>
#include <stdint.h>

typedef struct fe_env {
    /* Fill buf with len random bytes. NULL means libsodium's randombytes_buf. */
    void (*rand)(void *ctx, uint8_t *buf, size_t len);
    void *rand_ctx;
} fe_env;

static inline void fe_env_rand(const fe_env *env, uint8_t *buf, size_t len)
{
    extern void randombytes_buf(void *const buf, const size_t size);
    if (env && env->rand)
        env->rand(env->rand_ctx, buf, len);
    else
        randombytes_buf(buf, len);
}

#endif
