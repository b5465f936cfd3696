/* A scratch directory per test program, removed at the end. Header-only:
 * each test file is a program of its own. */
#ifndef FE_TESTDIR_H
#define FE_TESTDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Create /tmp/ferry-<tag>-XXXXXX into dir. 0 or -1. */
static inline int testdir_make(char *dir, size_t cap, const char *tag)
{
    int n = snprintf(dir, cap, "/tmp/ferry-%s-XXXXXX", tag);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdtemp(dir) ? 0 : -1;
}

/* Remove path and, for a directory, everything below it (at most depth
 * levels; the tests nest one or two). Links are removed, not followed. */
static inline int testdir_remove_at(const char *path, int depth)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    if (depth <= 0)
        return -1;
    chmod(path, 0700); /* tests make directories read-only */
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[512];
        int n = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(sub) || testdir_remove_at(sub, depth - 1) != 0)
            rc = -1;
    }
    closedir(d);
    return rmdir(path) == 0 ? rc : -1;
}

static inline int testdir_remove(const char *dir)
{
    return testdir_remove_at(dir, 8);
}

#endif
