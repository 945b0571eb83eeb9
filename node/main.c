/* swarmpki: entry point and the commands that create or start a node. */
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ca/ca.h"
#include "net/net.h"
#include "node/cli.h"
#include "node/daemon.h"
#include "node/setup.h"
#include "node/util.h"

#define SWARMPKI_VERSION "0.1.0"
/* How long --detach waits for the background node to report readiness. */
#define DETACH_WAIT_SECONDS 60

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "swarmpki: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'swarmpki %s%s--help' for usage.\n", command ? command : "",
            command ? " " : "");
    return CLI_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "swarmpki: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return CLI_FAILED;
}

int cli_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];

    if (strncmp(arg, name, len) != 0) {
        return 0;
    }
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0') {
        return 0;
    }
    if (*i + 1 >= argc) {
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

/* ---- starting a node ---- */

static volatile sig_atomic_t detach_timed_out;

static void on_alarm(int signum)
{
    (void)signum;
    detach_timed_out = 1;
}

/* Starts `swarmpki run` in a new session with its output in the log file
 * and waits until it reports that it serves. */
static int detach_node(const char *data_dir)
{
    char log_path[PATH_MAX + 16];
    char self_path[PATH_MAX];
    char fd_text[16];
    char answer[512] = "";
    int pipefd[2];
    ssize_t n = 0;
    pid_t pid;

    /* Executing the resolved path, not /proc/self/exe, keeps the process
     * name "swarmpki" for ps and pgrep. */
    n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
    if (n <= 0) {
        return cli_fail("find the swarmpki executable: %m");
    }
    self_path[n] = '\0';
    n = 0;
    snprintf(log_path, sizeof(log_path), "%s/swarmpki.log", data_dir);
    if (pipe(pipefd) != 0) {
        return cli_fail("create a pipe to the background node: %m");
    }
    pid = fork();
    if (pid < 0) {
        return cli_fail("start the background node: %m");
    }
    if (pid == 0) {
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int null_fd = open("/dev/null", O_RDONLY);
        if (log_fd < 0 || null_fd < 0) {
            _exit(1);
        }
        close(pipefd[0]);
        setsid();
        dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        snprintf(fd_text, sizeof(fd_text), "%d", pipefd[1]);
        execl(self_path, "swarmpki", "run", "--data-dir", data_dir, "--ready-fd", fd_text,
              (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);

    /* The child closes the pipe once it serves or fails. A hung start-up
     * is cut off by the alarm, whose handler only interrupts read(). */
    sigaction(SIGALRM, &(struct sigaction){.sa_handler = on_alarm}, NULL);
    alarm(DETACH_WAIT_SECONDS);
    for (ssize_t got; (got = read(pipefd[0], answer + n, sizeof(answer) - 1 - (size_t)n)) > 0;) {
        n += got;
    }
    alarm(0);
    close(pipefd[0]);
    answer[n > 0 ? n : 0] = '\0';
    answer[strcspn(answer, "\n")] = '\0';
    if (answer[0] == '\0' && detach_timed_out && waitpid(pid, NULL, WNOHANG) == 0) {
        /* The node neither failed nor became ready, and keeps trying. */
        return cli_fail("the node did not report ready within %d s and keeps trying in the "
                        "background (pid %ld); see its log %s, or stop it with `swarmpki stop "
                        "--data-dir %s`",
                        DETACH_WAIT_SECONDS, (long)pid, log_path, data_dir);
    }
    if (strcmp(answer, "ok") != 0) {
        return cli_fail("the node did not start: %s (log: %s)",
                        answer[0] ? answer : "it exited without a reason", log_path);
    }
    printf("The node runs in the background (pid %ld). Log: %s\n"
           "Stop it with: swarmpki stop --data-dir %s\n",
           (long)pid, log_path, data_dir);
    return CLI_OK;
}

int cli_start_node(const char *data_dir, int detach)
{
    if (detach) {
        fflush(stdout);
        return detach_node(data_dir);
    }
    fflush(stdout);
    return daemon_run(data_dir, -1);
}

/* Returns an absolute form of dir, so a background node and printed
 * commands work from any working directory. */
static const char *absolute_dir(const char *dir, char *buf, size_t size)
{
    char cwd[PATH_MAX];

    if (dir[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL) {
        return dir;
    }
    snprintf(buf, size, "%s/%s", cwd, dir);
    return buf;
}

/* ---- init, join, run ---- */

static int parse_expiry(const char *command, const char *text, int64_t *seconds)
{
    char errmsg[UTIL_ERRMSG_SIZE];

    if (util_duration_parse(text, seconds, errmsg) != 0) {
        return cli_usage_error(command, "--cert-expiry: %s", errmsg);
    }
    if (*seconds < CA_MIN_CERT_EXPIRY) {
        return cli_usage_error(command,
                               "--cert-expiry %s is too short: the minimum is 1h", text);
    }
    return 0;
}

static void print_join_commands(const char *worker, const char *manager, const char *addr)
{
    printf("To add a worker to this cluster, run:\n\n"
           "    swarmpki join --data-dir DIR --token %s %s\n\n"
           "To add a manager to this cluster, run:\n\n"
           "    swarmpki join --data-dir DIR --listen-addr HOST:PORT --token %s %s\n\n",
           worker, addr, manager, addr);
}

static int force_new_cluster(const cli_args *a, int detach, int extra_options)
{
    char errmsg[SETUP_ERRMSG_SIZE] = "";

    if (extra_options) {
        return cli_usage_error("init", "--force-new-cluster keeps the node's own settings; "
                                       "drop --listen-addr and --cert-expiry");
    }
    if (!setup_has_node(a->data_dir)) {
        return cli_fail("%s contains no swarmpki node to restart as a new cluster", a->data_dir);
    }
    if (setup_node_running(a->data_dir)) {
        return cli_fail("the node of %s is running; stop it first with `swarmpki stop "
                        "--data-dir %s`",
                        a->data_dir, a->data_dir);
    }
    if (setup_force_new_cluster(a->data_dir, errmsg) != 0) {
        return cli_fail("force-new-cluster failed: %s", errmsg);
    }
    printf("This manager is now the only member of its cluster; other managers were "
           "removed.\nJoin new managers with `swarmpki join-token manager`.\n");
    return cli_start_node(a->data_dir, detach);
}

/* Rejects an advertised address that no peer can connect to, such as the
 * listen address 0.0.0.0:2377 without --advertise-addr. */
static int check_advertised(const char *command, const char *listen, const char *advertise)
{
    const char *advertised = advertise != NULL ? advertise : listen;

    if (!net_addr_is_unspecified(advertised)) {
        return 0;
    }
    cli_usage_error(command,
                    "%s %s means every interface, which other nodes cannot connect to; "
                    "add --advertise-addr HOST:PORT with an address they can reach",
                    advertise != NULL ? "--advertise-addr" : "--listen-addr", advertised);
    return -1;
}

static int cmd_init(const cli_args *a)
{
    setup_init_opts o = {.cert_expiry = 2160 * 3600};
    setup_init_result r;
    char errmsg[SETUP_ERRMSG_SIZE] = "";
    const char *expiry = NULL;
    int detach = 0;
    int force = 0;
    int rv;

    for (int i = 1; i < a->argc; i++) {
        if ((rv = cli_option(a->argc, a->argv, &i, "--listen-addr", &o.listen_addr)) ||
            (rv = cli_option(a->argc, a->argv, &i, "--advertise-addr", &o.advertise_addr)) ||
            (rv = cli_option(a->argc, a->argv, &i, "--cert-expiry", &expiry))) {
            if (rv < 0) {
                return cli_usage_error("init", "%s needs a value", a->argv[i]);
            }
        } else if (strcmp(a->argv[i], "--detach") == 0 || strcmp(a->argv[i], "-d") == 0) {
            detach = 1;
        } else if (strcmp(a->argv[i], "--force-new-cluster") == 0) {
            force = 1;
        } else {
            return cli_usage_error("init", "unexpected argument \"%s\"", a->argv[i]);
        }
    }
    if (force) {
        return force_new_cluster(a, detach, o.listen_addr != NULL || expiry != NULL);
    }
    if (o.listen_addr == NULL) {
        return cli_usage_error("init", "--listen-addr HOST:PORT is required");
    }
    if (net_addr_check(o.listen_addr, errmsg) != 0 ||
        (o.advertise_addr && net_addr_check(o.advertise_addr, errmsg) != 0)) {
        return cli_usage_error("init", "%s", errmsg);
    }
    if (check_advertised("init", o.listen_addr, o.advertise_addr) != 0) {
        return CLI_USAGE;
    }
    if (expiry != NULL && (rv = parse_expiry("init", expiry, &o.cert_expiry)) != 0) {
        return rv;
    }
    o.data_dir = a->data_dir;
    if (setup_init(&o, &r, errmsg) != 0) {
        return cli_fail("init failed: %s", errmsg);
    }
    printf("Cluster initialized.\n  Cluster ID: %s\n  Node ID:    %s (manager)\n"
           "  Data:       %s\n\n",
           r.cluster_id, r.node_id, a->data_dir);
    print_join_commands(r.worker_token, r.manager_token, r.advertise_addr);
    return cli_start_node(a->data_dir, detach);
}

static int cmd_join(const cli_args *a)
{
    const char *token = NULL;
    const char *addr = NULL;
    const char *listen = NULL;
    const char *advertise = NULL;
    char errmsg[SETUP_ERRMSG_SIZE] = "";
    setup_join_result r;
    int detach = 0;
    int rv;

    for (int i = 1; i < a->argc; i++) {
        if ((rv = cli_option(a->argc, a->argv, &i, "--token", &token)) ||
            (rv = cli_option(a->argc, a->argv, &i, "--listen-addr", &listen)) ||
            (rv = cli_option(a->argc, a->argv, &i, "--advertise-addr", &advertise))) {
            if (rv < 0) {
                return cli_usage_error("join", "%s needs a value", a->argv[i]);
            }
        } else if (strcmp(a->argv[i], "--detach") == 0 || strcmp(a->argv[i], "-d") == 0) {
            detach = 1;
        } else if (a->argv[i][0] == '-' || addr != NULL) {
            return cli_usage_error("join", "unexpected argument \"%s\"", a->argv[i]);
        } else {
            addr = a->argv[i];
        }
    }
    if (token == NULL) {
        return cli_usage_error("join", "--token TOKEN is required");
    }
    if (addr == NULL) {
        return cli_usage_error("join", "the manager address HOST:PORT is required");
    }
    if (advertise != NULL && listen == NULL) {
        return cli_usage_error("join", "--advertise-addr needs --listen-addr");
    }
    if (net_addr_check(addr, errmsg) != 0 || (listen && net_addr_check(listen, errmsg) != 0) ||
        (advertise && net_addr_check(advertise, errmsg) != 0)) {
        return cli_usage_error("join", "%s", errmsg);
    }
    if (listen != NULL && check_advertised("join", listen, advertise) != 0) {
        return CLI_USAGE;
    }
    if (setup_join(a->data_dir, token, addr, listen, advertise, &r, errmsg) != 0) {
        return cli_fail("%s", errmsg);
    }
    printf("Joined cluster %s as %s node %s.\n", r.cluster_id, r.role, r.node_id);
    if (listen != NULL && strcmp(r.role, "worker") == 0) {
        fprintf(stderr, "swarmpki: the token made this node a worker, which does not listen; "
                        "--listen-addr and --advertise-addr were ignored\n");
    }
    return cli_start_node(a->data_dir, detach);
}

static int cmd_run(const cli_args *a)
{
    const char *ready = NULL;
    int detach = 0;
    int rv;

    for (int i = 1; i < a->argc; i++) {
        if ((rv = cli_option(a->argc, a->argv, &i, "--ready-fd", &ready)) != 0) {
            if (rv < 0) {
                return cli_usage_error("run", "--ready-fd needs a value");
            }
        } else if (strcmp(a->argv[i], "--detach") == 0 || strcmp(a->argv[i], "-d") == 0) {
            detach = 1;
        } else {
            return cli_usage_error("run", "unexpected argument \"%s\"", a->argv[i]);
        }
    }
    if (!setup_has_node(a->data_dir)) {
        return cli_fail("%s holds no swarmpki node; create one with `swarmpki init` or "
                        "`swarmpki join`",
                        a->data_dir);
    }
    if (ready != NULL) {
        return daemon_run(a->data_dir, atoi(ready));
    }
    return cli_start_node(a->data_dir, detach);
}

/* ---- dispatch ---- */

typedef struct command {
    const char *name;
    int (*run)(const cli_args *a);
} command;

static const command commands[] = {
    {"init", cmd_init},         {"join", cmd_join},     {"run", cmd_run},
    {"stop", cli_stop},         {"info", cli_info},     {"node", cli_node},
    {"join-token", cli_join_token}, {"update", cli_update},
};

static const char *default_data_dir(char *buf, size_t size)
{
    const char *env = getenv("SWARMPKI_DATA_DIR");
    const char *home = getenv("HOME");

    if (env != NULL && env[0] != '\0') {
        return env;
    }
    if (geteuid() == 0 || home == NULL) {
        return "/var/lib/swarmpki";
    }
    snprintf(buf, size, "%s/.local/share/swarmpki", home);
    return buf;
}

/* Takes --data-dir out of argv wherever it appears; returns -1 when its
 * value is missing. */
static int take_data_dir(int *argc, char **argv, const char **data_dir)
{
    int out = 0;

    for (int i = 0; i < *argc; i++) {
        int rv = cli_option(*argc, argv, &i, "--data-dir", data_dir);
        if (rv < 0) {
            return -1;
        }
        if (rv == 0) {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    return 0;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    char default_buf[PATH_MAX];
    char absolute_buf[PATH_MAX];
    const char *data_dir = NULL;
    cli_args a;
    int args_count = argc - 1;

    /* A write to a peer that went away must fail with EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (take_data_dir(&args_count, argv + 1, &data_dir) != 0) {
        return cli_usage_error(NULL, "--data-dir needs a directory");
    }
    if (args_count == 0 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        cli_help(args_count > 1 ? argv[2] : NULL);
        return args_count == 0 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("swarmpki %s\n", SWARMPKI_VERSION);
        return CLI_OK;
    }
    if (data_dir == NULL) {
        data_dir = default_data_dir(default_buf, sizeof(default_buf));
    }
    if (data_dir[0] == '\0') {
        return cli_usage_error(NULL, "--data-dir must not be empty");
    }
    a.data_dir = absolute_dir(data_dir, absolute_buf, sizeof(absolute_buf));
    a.argc = args_count;
    a.argv = argv + 1;

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(a.argv[0], commands[i].name) == 0) {
            if (wants_help(a.argc, a.argv)) {
                cli_help(commands[i].name);
                return CLI_OK;
            }
            return commands[i].run(&a);
        }
    }
    return cli_usage_error(NULL, "unknown command \"%s\"", a.argv[0]);
}
