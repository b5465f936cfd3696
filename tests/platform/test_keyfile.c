/* Tests for platform/keyfile.c: create, reload, refuse bad files, and a
 * creation race between processes that must end with one key. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyfile.h"
#include "testdir.h"

static char tmpdir[64];
static char keypath[128];

static int setup(void **state)
{
    (void)state;
    umask(022);
    if (testdir_make(tmpdir, sizeof(tmpdir), "key") != 0)
        return -1;
    snprintf(keypath, sizeof(keypath), "%s/node.key", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return testdir_remove(tmpdir);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    if (len)
        assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static void test_create_then_load(void **state)
{
    (void)state;
    fe_identity a, b, c;
    char err[512] = "";
    int created = -1;
    assert_int_equal(fe_keyfile_load_or_create(&a, keypath, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 1);
    struct stat st;
    assert_int_equal(stat(keypath, &st), 0);
    assert_int_equal(st.st_size, FE_SEED_BYTES);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(dir_entries(tmpdir), 1); /* no temporary file left behind */

    assert_int_equal(fe_keyfile_load_or_create(&b, keypath, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 0);
    assert_memory_equal(a.pk, b.pk, FE_PK_BYTES);
    assert_memory_equal(a.sk, b.sk, FE_SK_BYTES);
    assert_memory_equal(a.addr, b.addr, FE_ADDR_BYTES);

    /* The file holds the seed the identity is derived from. */
    uint8_t seed[FE_SEED_BYTES];
    int fd = open(keypath, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, seed, sizeof(seed)), FE_SEED_BYTES);
    close(fd);
    assert_int_equal(fe_ident_from_seed(&c, seed), 0);
    assert_memory_equal(a.pk, c.pk, FE_PK_BYTES);

    /* A second key file is a different identity. */
    char other[160];
    snprintf(other, sizeof(other), "%s/other.key", tmpdir);
    assert_int_equal(fe_keyfile_load_or_create(&c, other, NULL, err, sizeof(err)), 0);
    assert_memory_not_equal(a.pk, c.pk, FE_PK_BYTES);
}

static void test_wrong_size(void **state)
{
    (void)state;
    uint8_t junk[64];
    memset(junk, 0xab, sizeof(junk));
    size_t sizes[] = {0, 31, 33, 64};
    char err[512], expect[256];
    fe_identity id;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        write_file(keypath, junk, sizes[i], 0600);
        int created = -1;
        assert_int_equal(fe_keyfile_load_or_create(&id, keypath, &created, err, sizeof(err)),
                         FE_ERR_MALFORMED);
        assert_int_equal(created, 0);
        snprintf(expect, sizeof(expect), "%s is not a ferry key file (%zu bytes, expected 32)",
                 keypath, sizes[i]);
        assert_string_equal(err, expect);
        /* Never overwritten. */
        struct stat st;
        assert_int_equal(stat(keypath, &st), 0);
        assert_int_equal((size_t)st.st_size, sizes[i]);
    }
    unlink(keypath);
}

static void test_refuses_open_permissions(void **state)
{
    (void)state;
    uint8_t seed[FE_SEED_BYTES];
    memset(seed, 7, sizeof(seed));
    mode_t modes[] = {0640, 0604, 0660, 0700 | 0004};
    char err[512], fix[200];
    snprintf(fix, sizeof(fix), "chmod 600 %s", keypath);
    fe_identity id;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        write_file(keypath, seed, sizeof(seed), modes[i]);
        assert_int_equal(fe_keyfile_load_or_create(&id, keypath, NULL, err, sizeof(err)),
                         FE_ERR_INVALID);
        assert_non_null(strstr(err, "accessible by group or others"));
        assert_non_null(strstr(err, fix));
    }
    /* After the fix it loads, and is the identity of that seed. */
    assert_int_equal(chmod(keypath, 0600), 0);
    assert_int_equal(fe_keyfile_load_or_create(&id, keypath, NULL, err, sizeof(err)), 0);
    fe_identity expect;
    assert_int_equal(fe_ident_from_seed(&expect, seed), 0);
    assert_memory_equal(id.pk, expect.pk, FE_PK_BYTES);
    unlink(keypath);
}

static void test_bad_paths(void **state)
{
    (void)state;
    char err[512], path[160];
    fe_identity id;
    snprintf(path, sizeof(path), "%s/no/such/dir/node.key", tmpdir);
    assert_int_equal(fe_keyfile_load_or_create(&id, path, NULL, err, sizeof(err)), FE_ERR_STORE);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file or directory"));

    assert_int_equal(fe_keyfile_load_or_create(&id, tmpdir, NULL, err, sizeof(err)),
                     FE_ERR_MALFORMED);
    assert_non_null(strstr(err, "not a regular file"));

    assert_int_equal(fe_keyfile_load_or_create(&id, "", NULL, err, sizeof(err)), FE_ERR_INVALID);
    assert_int_equal(fe_keyfile_load_or_create(NULL, keypath, NULL, err, sizeof(err)),
                     FE_ERR_INVALID);
}

/* Several processes create the same key file at once: all end up with the
 * same identity and one file. */
static void test_creation_race(void **state)
{
    (void)state;
    enum { N = 6 };
    char path[160];
    snprintf(path, sizeof(path), "%s/race.key", tmpdir);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            close(p[0]);
            fe_identity id;
            char err[256];
            uint8_t out[1 + FE_PK_BYTES];
            memset(out, 0, sizeof(out));
            int created = 0;
            if (fe_keyfile_load_or_create(&id, path, &created, err, sizeof(err)) == 0) {
                out[0] = (uint8_t)(1 + created);
                memcpy(out + 1, id.pk, FE_PK_BYTES);
            }
            ssize_t w = write(p[1], out, sizeof(out)); /* < PIPE_BUF: atomic */
            _exit(w == (ssize_t)sizeof(out) ? 0 : 1);
        }
    }
    close(p[1]);
    uint8_t first[FE_PK_BYTES];
    int creators = 0;
    for (int i = 0; i < N; i++) {
        uint8_t in[1 + FE_PK_BYTES];
        assert_int_equal(read(p[0], in, sizeof(in)), (ssize_t)sizeof(in));
        assert_true(in[0] == 1 || in[0] == 2);
        creators += in[0] == 2;
        if (i == 0)
            memcpy(first, in + 1, FE_PK_BYTES);
        else
            assert_memory_equal(first, in + 1, FE_PK_BYTES);
    }
    close(p[0]);
    for (int i = 0; i < N; i++) {
        int status;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(creators, 1);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_then_load),
        cmocka_unit_test(test_wrong_size),
        cmocka_unit_test(test_refuses_open_permissions),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_creation_race),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
