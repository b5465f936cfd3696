/* Key file: see keyfile.h. */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"

#define KEYFILE_PATH_MAX 4096

/* Read exactly len bytes; -1 on error or early end of file. */
static int read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = write(fd, buf + put, len - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        put += (size_t)n;
    }
    return 0;
}

/* fsync the directory holding path, so that a new name in it is durable. */
static int sync_dir_of(const char *path)
{
    char dir[KEYFILE_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        memcpy(dir, ".", 2);
    } else if (slash == path) {
        memcpy(dir, "/", 2);
    } else {
        size_t n = (size_t)(slash - path);
        memcpy(dir, path, n); /* n < strlen(path) < KEYFILE_PATH_MAX */
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* 0 and the seed from an open key file, or an error. */
static int load_seed(uint8_t seed[FE_SEED_BYTES], int fd, const char *path, char *err,
                     size_t err_len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fe_errf(err, err_len, "cannot read key file %s: %s", path, strerror(errno));
        return FE_ERR_STORE;
    }
    if (!S_ISREG(st.st_mode)) {
        fe_errf(err, err_len, "key file %s is not a regular file", path);
        return FE_ERR_MALFORMED;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        fe_errf(err, err_len,
                "key file %s is accessible by group or others (mode %04o); "
                "fix it with: chmod 600 %s",
                path, (unsigned)(st.st_mode & 07777), path);
        return FE_ERR_INVALID;
    }
    if (st.st_size != FE_SEED_BYTES) {
        fe_errf(err, err_len, "%s is not a ferry key file (%lld bytes, expected %d)", path,
                (long long)st.st_size, FE_SEED_BYTES);
        return FE_ERR_MALFORMED;
    }
    if (read_full(fd, seed, FE_SEED_BYTES) != 0) {
        fe_errf(err, err_len, "cannot read key file %s: %s", path,
                errno ? strerror(errno) : "file shrank while reading");
        return FE_ERR_STORE;
    }
    return 0;
}

/* Write a fresh seed to a temporary file and link it to path. Returns 0,
 * 1 if path appeared meanwhile (another process won the race), or an error. */
static int create_seed(uint8_t seed[FE_SEED_BYTES], const char *path, char *err, size_t err_len)
{
    char tmp[KEYFILE_PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        fe_errf(err, err_len, "key file path %s is too long", path);
        return FE_ERR_INVALID;
    }
    randombytes_buf(seed, FE_SEED_BYTES);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) { /* a leftover of a crashed run with our pid */
        unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        fe_errf(err, err_len, "cannot create key file %s: %s", path, strerror(errno));
        return FE_ERR_STORE;
    }
    /* 0600 at open is further narrowed by the umask, never widened. */
    if (write_full(fd, seed, FE_SEED_BYTES) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        fe_errf(err, err_len, "cannot write key file %s: %s", tmp, strerror(e));
        return FE_ERR_STORE;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        fe_errf(err, err_len, "cannot write key file %s: %s", tmp, strerror(e));
        return FE_ERR_STORE;
    }
    /* link(2), unlike rename(2), never replaces a key another process has
     * just created. */
    int rc = link(tmp, path);
    int e = errno;
    unlink(tmp);
    if (rc != 0 && e == EEXIST)
        return 1;
    if (rc != 0) {
        fe_errf(err, err_len, "cannot create key file %s: %s", path, strerror(e));
        return FE_ERR_STORE;
    }
    if (sync_dir_of(path) != 0) {
        fe_errf(err, err_len, "cannot sync the directory of key file %s: %s", path,
                strerror(errno));
        return FE_ERR_STORE;
    }
    return 0;
}

int fe_keyfile_load_or_create(fe_identity *id, const char *path, int *created, char *err,
                              size_t err_len)
{
    if (created)
        *created = 0;
    if (!id || !path || !*path || strlen(path) >= KEYFILE_PATH_MAX - 32) {
        fe_errf(err, err_len, "no usable key file path");
        return FE_ERR_INVALID;
    }
    if (sodium_init() < 0) {
        fe_errf(err, err_len, "libsodium could not be initialised");
        return FE_ERR_CRYPTO;
    }
    uint8_t seed[FE_SEED_BYTES];
    int rc = 0;
    int made = 0;
    /* Two rounds at most: create, or lose a creation race and load. */
    for (int round = 0; round < 2; round++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
            rc = load_seed(seed, fd, path, err, err_len);
            close(fd);
            break;
        }
        if (errno != ENOENT) {
            fe_errf(err, err_len, "cannot open key file %s: %s", path, strerror(errno));
            rc = FE_ERR_STORE;
            break;
        }
        rc = create_seed(seed, path, err, err_len);
        if (rc == 0) {
            made = 1;
            break;
        }
        if (rc < 0)
            break;
        rc = 0; /* somebody else created it: load theirs */
        if (round == 1) {
            fe_errf(err, err_len, "key file %s keeps changing", path);
            rc = FE_ERR_STORE;
        }
    }
    if (rc == 0) {
        rc = fe_ident_from_seed(id, seed);
        if (rc != 0)
            fe_errf(err, err_len, "key file %s: the seed was rejected", path);
    }
    sodium_memzero(seed, sizeof(seed));
    if (rc == 0 && created)
        *created = made;
    return rc;
}
