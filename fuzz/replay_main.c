/* SPDX-License-Identifier: MIT */
/*
 * Replays fuzz corpora without libFuzzer: each file under the given directories is passed to
 * LLVMFuzzerTestOneInput once, under whatever sanitizers the build has. CI runs this with
 * the asan build so every corpus entry (seeds and past findings) stays a regression test.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)(n > 0 ? n : 0), f) : 0;
    fclose(f);
    if (!buf)
        return -1;
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;

    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            failed++;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            char path[4096];
            struct stat st;
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) || !S_ISREG(st.st_mode))
                continue;
            if (replay_file(path) == 0)
                passed++; /* a failing input aborts the process under the sanitizers */
            else
                failed++;
        }
        closedir(d);
    }
    printf("fuzz-replay %s: %d passed, %d failed\n", argc > 1 ? argv[1] : "", passed, failed);
    return failed || passed == 0 ? 1 : 0;
}
