/* join-bench: starts a cluster of managers with the real swarmpki
 * executable, reads its state through the command line, and stops it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/join_bench.h"

/* How long a new cluster may take until every manager is a reachable voter. */
#define READY_TIMEOUT_MS 30000
#define READY_POLL_MS    100
/* How long `swarmpki stop` may take before the manager is killed. */
#define STOP_TIMEOUT_MS 15000

static int fail(char *errmsg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(errmsg, BENCH_ERROR_SIZE, fmt, ap);
    va_end(ap);
    return -1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Runs swarmpki with --data-dir and args (NULL-terminated), waits for it and
 * stores its standard output and error in out (size bytes, NUL-terminated,
 * cut short if longer). Returns the exit status, or -1 if it did not run. */
static int run_swarmpki(const bench_cluster *c, const char *data_dir, char *out,
                        size_t size, const char *const *args)
{
    const char *argv[16];
    int fds[2];
    size_t len = 0;
    int argc = 0;
    int status;
    pid_t pid;

    argv[argc++] = c->swarmpki;
    argv[argc++] = "--data-dir";
    argv[argc++] = data_dir;
    for (; *args != NULL && argc < 15; args++) {
        argv[argc++] = *args;
    }
    argv[argc] = NULL;

    if (pipe(fds) != 0) {
        return -1;
    }
    /* Only the copies on the child's descriptors 1 and 2 may survive exec. */
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execv(c->swarmpki, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);

    /* A detached node redirects its own output, so the pipe reaches end of
     * file once the command itself exits. */
    for (;;) {
        char chunk[4096];
        ssize_t n = read(fds[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n && len + 1 < size; i++) {
            out[len++] = chunk[i];
        }
    }
    close(fds[0]);
    out[len] = '\0';
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Returns a TCP port on 127.0.0.1 that was free a moment ago, or 0. */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = 0;

    if (fd < 0) {
        return 0;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    close(fd);
    return port;
}

static pid_t read_pid(const char *data_dir)
{
    char path[PATH_MAX + 16];
    long pid = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/swarmpki.pid", data_dir);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%ld", &pid) != 1) {
        pid = 0;
    }
    fclose(f);
    return (pid_t)pid;
}

/* Picks a port no other manager of this cluster uses. */
static int pick_addr(bench_cluster *c, int index, char *errmsg)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int port = free_port();
        int in_use = port == 0;

        snprintf(c->managers[index].addr, BENCH_ADDR_SIZE, "127.0.0.1:%d", port);
        for (int i = 0; i < index && !in_use; i++) {
            in_use = strcmp(c->managers[i].addr, c->managers[index].addr) == 0;
        }
        if (!in_use) {
            return 0;
        }
    }
    return fail(errmsg, "cannot find a free TCP port on 127.0.0.1");
}

static int start_manager(bench_cluster *c, int index, const char *manager_token,
                         char *errmsg)
{
    bench_manager *m = &c->managers[index];
    char out[4096];
    int rv;

    snprintf(m->data_dir, sizeof(m->data_dir), "%s/m%d", c->base_dir, index + 1);
    if (pick_addr(c, index, errmsg) != 0) {
        return -1;
    }
    if (index == 0) {
        const char *args[] = {"init", "--listen-addr", m->addr, "--detach", NULL};
        rv = run_swarmpki(c, m->data_dir, out, sizeof(out), args);
    } else {
        const char *args[] = {"join",  "--token",  manager_token,       "--listen-addr",
                              m->addr, "--detach", c->managers[0].addr, NULL};
        rv = run_swarmpki(c, m->data_dir, out, sizeof(out), args);
    }
    if (rv != 0) {
        return fail(errmsg, "starting manager %d at %s failed (exit %d): %.200s",
                    index + 1, m->addr, rv, out);
    }
    c->count = index + 1;
    m->pid = read_pid(m->data_dir);
    if (m->pid <= 0) {
        return fail(errmsg, "manager %d started but %s/swarmpki.pid holds no process id",
                    index + 1, m->data_dir);
    }
    return 0;
}

static int read_token(bench_cluster *c, const char *role, char *token, size_t size,
                      char *errmsg)
{
    const char *args[] = {"join-token", "-q", role, NULL};
    char out[512];
    int rv = run_swarmpki(c, c->managers[0].data_dir, out, sizeof(out), args);

    out[strcspn(out, "\r\n")] = '\0';
    if (rv != 0 || strncmp(out, "SWMTKN-1-", 9) != 0 || strlen(out) >= size) {
        return fail(errmsg, "`swarmpki join-token -q %s` failed (exit %d): %.200s", role,
                    rv, out);
    }
    snprintf(token, size, "%s", out);
    return 0;
}

/* Reads `swarmpki info` of manager index into out. */
static int read_info(const bench_cluster *c, int index, char *out, size_t size)
{
    const char *args[] = {"info", NULL};

    return run_swarmpki(c, c->managers[index].data_dir, out, size, args);
}

/* Counts the members that `info` lists as reachable voters. */
static int count_ready_voters(const char *info)
{
    int count = 0;

    for (const char *line = info; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char text[512];

        snprintf(text, sizeof(text), "%.*s", (int)len, line);
        if (strstr(text, " voter ") != NULL && strstr(text, "reachable") != NULL &&
            strstr(text, "unreachable") == NULL) {
            count++;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return count;
}

static int wait_ready(const bench_cluster *c, char *errmsg)
{
    char info[8192] = "";

    for (int waited = 0; waited < READY_TIMEOUT_MS; waited += READY_POLL_MS) {
        if (read_info(c, 0, info, sizeof(info)) == 0 &&
            count_ready_voters(info) == c->count && bench_cluster_leader(c) >= 0) {
            return 0;
        }
        sleep_ms(READY_POLL_MS);
    }
    return fail(errmsg,
                "the %d managers did not all become reachable voters within %d s; last "
                "`swarmpki info`: %.150s",
                c->count, READY_TIMEOUT_MS / 1000, info);
}

int bench_cluster_start(bench_cluster *c, const char *parent_dir, int count, char *errmsg)
{
    char manager_token[128] = "";

    c->count = 0;
    c->started = 1;
    snprintf(c->base_dir, sizeof(c->base_dir), "%s/join-bench.XXXXXX", parent_dir);
    if (mkdtemp(c->base_dir) == NULL) {
        int err = errno;
        c->base_dir[0] = '\0';
        return fail(errmsg, "cannot create a directory in %s: %s", parent_dir,
                    strerror(err));
    }

    for (int i = 0; i < count; i++) {
        if (start_manager(c, i, manager_token, errmsg) != 0) {
            bench_cluster_stop(c, 0);
            return -1;
        }
        if (i == 0 && count > 1 &&
            read_token(c, "manager", manager_token, sizeof(manager_token), errmsg) != 0) {
            bench_cluster_stop(c, 0);
            return -1;
        }
    }
    if (wait_ready(c, errmsg) != 0 ||
        read_token(c, "worker", c->worker_token, sizeof(c->worker_token), errmsg) != 0) {
        bench_cluster_stop(c, 0);
        return -1;
    }
    return 0;
}

/* Tells whether pid has exited. A detached manager's parent is init, which
 * may reap it late, so a zombie counts as gone. */
static int process_gone(pid_t pid)
{
    char path[64];
    char stat[256] = "";
    const char *after_name;
    FILE *f;

    if (kill(pid, 0) != 0 && errno == ESRCH) {
        return 1;
    }
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 1;
    }
    if (fgets(stat, sizeof(stat), f) == NULL) {
        stat[0] = '\0';
    }
    fclose(f);
    after_name = strrchr(stat, ')');
    return after_name != NULL && after_name[1] == ' ' && after_name[2] == 'Z';
}

static void stop_manager(bench_cluster *c, bench_manager *m)
{
    const char *args[] = {"stop", NULL};
    char out[1024];
    int rv;

    if (m->pid <= 0) {
        return;
    }
    rv = run_swarmpki(c, m->data_dir, out, sizeof(out), args);
    for (int waited = 0; rv == 0 && waited < STOP_TIMEOUT_MS && !process_gone(m->pid);
         waited += 50) {
        sleep_ms(50);
    }
    if (!process_gone(m->pid)) {
        fprintf(
            stderr,
            "join-bench: `swarmpki stop` did not stop manager pid %ld (exit %d: %.200s); "
            "killing it\n",
            (long)m->pid, rv, out);
        kill(m->pid, SIGKILL);
    }
    m->pid = 0;
}

/* Removes path and, for a directory, everything below it, without
 * following symbolic links. */
static void remove_tree(const char *path)
{
    struct stat st;
    struct dirent *entry;
    DIR *dir;

    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && (dir = opendir(path)) != NULL) {
        while ((entry = readdir(dir)) != NULL) {
            char child[PATH_MAX];
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) {
                continue;
            }
            snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
            remove_tree(child);
        }
        closedir(dir);
    }
    if (remove(path) != 0) {
        fprintf(stderr, "join-bench: cannot remove %s: %s\n", path, strerror(errno));
    }
}

void bench_cluster_stop(bench_cluster *c, int keep)
{
    if (!c->started) {
        return;
    }
    for (int i = c->count - 1; i >= 0; i--) {
        stop_manager(c, &c->managers[i]);
    }
    if (c->base_dir[0] != '\0') {
        if (keep) {
            fprintf(stderr, "join-bench: kept the data directories in %s\n", c->base_dir);
        } else {
            remove_tree(c->base_dir);
        }
    }
    c->started = 0;
}

/* Finds "NAME VALUE" on the Raft line of `info` and copies VALUE up to the
 * next comma or end of line. */
static int raft_field(const char *info, const char *name, char *value, size_t size)
{
    const char *line = strstr(info, "Raft:");
    const char *at;
    size_t len;

    if (line == NULL) {
        return -1;
    }
    at = strstr(line, name);
    if (at == NULL || at > line + strcspn(line, "\n")) {
        return -1;
    }
    at += strlen(name);
    len = strcspn(at, ",\n");
    snprintf(value, size, "%.*s", (int)len, at);
    return 0;
}

/* Finds the member line of `info` that ends in "leader" and copies its
 * third column, the member's address. */
static int leader_addr(const char *info, char *addr, size_t size)
{
    for (const char *line = info; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char text[512];
        char id[64];
        char node[64];
        char member[BENCH_ADDR_SIZE];

        snprintf(text, sizeof(text), "%.*s", (int)len, line);
        len = strlen(text);
        if (len > 8 && strcmp(text + len - 8, ", leader") == 0 &&
            sscanf(text, "%63s %63s %63s", id, node, member) == 3) {
            snprintf(addr, size, "%s", member);
            return 0;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return -1;
}

int bench_cluster_leader(const bench_cluster *c)
{
    char info[8192];
    char leader[BENCH_ADDR_SIZE];

    if (!c->started || read_info(c, 0, info, sizeof(info)) != 0 ||
        leader_addr(info, leader, sizeof(leader)) != 0) {
        return -1;
    }
    for (int i = 0; i < c->count; i++) {
        if (strcmp(c->managers[i].addr, leader) == 0) {
            return i;
        }
    }
    return -1;
}

uint64_t bench_cluster_commit(const bench_cluster *c, int leader)
{
    char info[8192];
    char commit[32];

    if (!c->started || leader < 0 || read_info(c, leader, info, sizeof(info)) != 0 ||
        raft_field(info, " commit ", commit, sizeof(commit)) != 0) {
        return 0;
    }
    return strtoull(commit, NULL, 10);
}

double bench_process_cpu_ms(pid_t pid)
{
    char path[64];
    char stat[1024];
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    const char *after_name;
    size_t len;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    len = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[len] = '\0';

    /* The command name in brackets may contain spaces, so the fields are
     * counted from the closing bracket, which ends field 2. Fields 14 and 15
     * are utime and stime in clock ticks. */
    after_name = strrchr(stat, ')');
    if (after_name == NULL ||
        sscanf(after_name + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2) {
        return -1;
    }
    return (double)(utime + stime) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}
