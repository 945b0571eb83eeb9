#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

void make_temp_dir(char out[TEMP_DIR_SIZE])
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || strlen(base) > 30) {
        base = "/tmp";
    }
    snprintf(out, TEMP_DIR_SIZE, "%s/swarmpki-node-XXXXXX", base);
    assert_non_null(mkdtemp(out));
}

void remove_tree(const char *path)
{
    struct stat st;
    DIR *dir;
    struct dirent *entry;
    char child[512];

    if (lstat(path, &st) != 0) {
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }

    /* A test may have made the directory read-only; make it writable
     * again so its entries can go. */
    chmod(path, 0700);
    dir = opendir(path);
    if (dir != NULL) {
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) {
                continue;
            }
            snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
            remove_tree(child);
        }
        closedir(dir);
    }
    rmdir(path);
}

int count_entries(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *entry;
    int n = 0;

    if (dir == NULL) {
        return -1;
    }
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(dir);
    return n;
}

void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}
