/* test_fuzz_regressions.c: replays saved inputs through the fuzz targets' own one-input
 * functions (native/fuzz/fuzz_*.c, compiled here with RWKV_FUZZ_REPLAY): every file of
 * native/fuzz/regressions/<target>/ (inputs that once crashed or broke a promise) and of
 * native/fuzz/corpus/<target>/ (the seeds: valid files of every architecture and type). Runs in
 * every build, no libFuzzer needed; a target aborts on failure, naming the file printed last.
 *
 * Usage: test_fuzz_regressions FUZZ_DIR */
#include <dirent.h>
#include "../fuzz/fuzz_targets.h"
#include "test_util.h"

struct target {
    const char * name;
    int (*run)(const uint8_t * data, size_t size);
};

static int compare_names(const void * a, const void * b) {
    return strcmp(*(char * const *) a, *(char * const *) b);
}

/* Replays every regular file of dir in name order; returns how many. */
static size_t replay_dir(const struct target * t, const char * dir) {
    DIR * d = opendir(dir);
    if (!d) {
        return 0;  /* a target may have no regressions yet */
    }
    char * names[4096];
    size_t n = 0;
    for (struct dirent * e; (e = readdir(d)) != NULL && n < sizeof(names) / sizeof(names[0]);) {
        if (e->d_name[0] != '.') {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), compare_names);
    size_t replayed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        free(names[i]);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        printf("  %s\n", path);
        fflush(stdout);
        size_t size = 0;
        uint8_t * data = test_read_file(path, &size);
        CHECK_MSG(data != NULL, "cannot read %s", path);
        if (data) {
            /* An exact-size copy, as libFuzzer passes it, so reading past the end is caught. */
            uint8_t * exact = malloc(size ? size : 1);
            memcpy(exact, data, size);
            t->run(exact, size);
            free(exact);
            free(data);
            replayed++;
        }
    }
    return replayed;
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FUZZ_DIR\n", argv[0]);
        return 2;
    }
    const struct target targets[] = {
        {"model_file", rwkv_fuzz_model_file},
        {"tokenizer", rwkv_fuzz_tokenizer},
        {"state_file", rwkv_fuzz_state_file},
        {"vocab", rwkv_fuzz_vocab},
    };
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/regressions/%s", argv[1], targets[i].name);
        const size_t n_regressions = replay_dir(&targets[i], dir);
        snprintf(dir, sizeof(dir), "%s/corpus/%s", argv[1], targets[i].name);
        const size_t n_seeds = replay_dir(&targets[i], dir);
        printf("%s: %zu regression inputs, %zu seeds replayed\n", targets[i].name, n_regressions, n_seeds);
        CHECK_MSG(n_seeds > 0, "no seeds found in %s", dir);
    }
    return test_finish("test_fuzz_regressions");
}
