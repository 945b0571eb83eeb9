/* Commands that talk to the running node through <data-dir>/control.sock. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "net/net.h"
#include "node/cli.h"
#include "node/conf.h"
#include "node/setup.h"
#include "node/util.h"

/* Generous, because node ls reads every node record. */
#define CONTROL_TIMEOUT_MS 30000
#define STOP_WAIT_SECONDS 30

/* Appends the text of a part of a long response to *text. */
static int append_part(util_sbuf *b, const net_msg *part)
{
    return part->text == NULL ? 0 : util_sbuf_printf(b, "%s", part->text);
}

/* Receives the parts that follow a first response with code
 * NET_CONTROL_PART and joins their text. On success resp contains the last
 * response with the whole text. */
static int receive_parts(net_caller *cl, net_msg *resp, char *errmsg)
{
    util_sbuf b = {0};
    int rv = 0;

    while (rv == 0 && resp->type == NET_MSG_CONTROL_RESP && resp->code == NET_CONTROL_PART) {
        if (append_part(&b, resp) != 0) {
            snprintf(errmsg, NET_ERRMSG_SIZE, "out of memory while reading the response");
            rv = NET_ENOMEM;
            break;
        }
        net_msg_clear(resp);
        rv = net_caller_receive(cl, CONTROL_TIMEOUT_MS, resp, errmsg);
    }
    if (rv == 0 && b.len > 0) {
        if (append_part(&b, resp) != 0) {
            snprintf(errmsg, NET_ERRMSG_SIZE, "out of memory while reading the response");
            rv = NET_ENOMEM;
        } else {
            free(resp->text);
            resp->text = b.data;
            b.data = NULL;
        }
    }
    util_sbuf_free(&b);
    return rv;
}

/* Sends one control request; on success *code and *text contain the response
 * (free *text). Prints the error and returns CLI_FAILED otherwise. */
static int control_call(const char *data_dir, const char **words, uint32_t count, int *code,
                        char **text)
{
    char path[PATH_MAX + 16];
    char errmsg[NET_ERRMSG_SIZE] = "";
    net_msg req = {.type = NET_MSG_CONTROL_REQ, .id = 1};
    net_msg resp = {0};
    net_caller *cl = NULL;
    int rv;

    snprintf(path, sizeof(path), "%s/control.sock", data_dir);
    req.list = (char **)words;
    req.list_len = count;
    rv = net_caller_open(path, NULL, CONTROL_TIMEOUT_MS, &cl, NULL, errmsg);
    rv = rv ? rv : net_caller_call(cl, &req, CONTROL_TIMEOUT_MS, &resp, errmsg);
    rv = rv ? rv : receive_parts(cl, &resp, errmsg);
    net_caller_close(cl);
    if ((rv == NET_ECONNECT || rv == NET_EADDR) && !setup_has_node(data_dir)) {
        return cli_fail("%s contains no swarmpki node; pass the node's --data-dir, or create a "
                        "node with `swarmpki init` or `swarmpki join`",
                        data_dir);
    }
    if (rv == NET_ECONNECT || rv == NET_EADDR) {
        return cli_fail("no swarmpki node is running with data directory %s (%s); start it with "
                        "`swarmpki run --data-dir %s`",
                        data_dir, errmsg, data_dir);
    }
    if (rv != 0) {
        net_msg_clear(&resp);
        return cli_fail("control request to %s failed: %s", path, errmsg);
    }
    if (resp.type == NET_MSG_ERROR) {
        cli_fail("%s", resp.text ? resp.text : "the node rejected the request");
        net_msg_clear(&resp);
        return CLI_FAILED;
    }
    *code = resp.code;
    *text = resp.text;
    resp.text = NULL;
    net_msg_clear(&resp);
    return CLI_OK;
}

/* Runs a control request and prints its response: output on stdout, an
 * error on stderr. */
static int control_print(const char *data_dir, const char **words, uint32_t count)
{
    int code = 0;
    char *text = NULL;
    int rv = control_call(data_dir, words, count, &code, &text);

    if (rv != CLI_OK) {
        return rv;
    }
    if (code != 0) {
        cli_fail("%s", text ? text : "the request failed");
    } else if (text != NULL) {
        fputs(text, stdout);
    }
    free(text);
    return code == 0 ? CLI_OK : CLI_FAILED;
}

static int no_arguments(const cli_args *a)
{
    if (a->argc > 1) {
        return cli_usage_error(a->argv[0], "unexpected argument \"%s\"", a->argv[1]);
    }
    return 0;
}

static long read_pid(const char *data_dir)
{
    char path[PATH_MAX + 16];
    char errmsg[UTIL_ERRMSG_SIZE];
    char *text = NULL;
    size_t len;
    long pid = 0;

    snprintf(path, sizeof(path), "%s/swarmpki.pid", data_dir);
    if (util_file_read(path, 64, &text, &len, errmsg) == 0) {
        pid = strtol(text, NULL, 10);
        free(text);
    }
    return pid;
}

static int is_zombie(long pid)
{
    char path[64];
    char text[512];
    FILE *f;
    char *state;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    /* The state follows the command name, which is in parentheses. */
    state = strrchr(text, ')');
    return state != NULL && state[1] == ' ' && state[2] == 'Z';
}

int cli_stop(const cli_args *a)
{
    const char *words[] = {"stop"};
    long pid;
    int rv = no_arguments(a);

    if (rv != 0) {
        return rv;
    }
    pid = read_pid(a->data_dir);
    if (setup_has_node(a->data_dir) &&
        (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH) || is_zombie(pid))) {
        printf("The node of %s is not running.\n", a->data_dir);
        return CLI_OK;
    }
    rv = control_print(a->data_dir, words, 1);
    if (rv != CLI_OK) {
        return rv;
    }

    /* The node responds before it closes; wait until the process is gone.
     * A detached node's parent is init, which may reap it a second later,
     * so a zombie counts as gone. */
    for (int i = 0; pid > 0 && i < STOP_WAIT_SECONDS * 10; i++) {
        if ((kill((pid_t)pid, 0) != 0 && errno == ESRCH) || is_zombie(pid)) {
            printf("Node stopped.\n");
            return CLI_OK;
        }
        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
    }
    if (pid > 0) {
        return cli_fail("the node (pid %ld) did not exit within %d s; see %s/swarmpki.log", pid,
                        STOP_WAIT_SECONDS, a->data_dir);
    }
    printf("Node stopped.\n");
    return CLI_OK;
}

int cli_info(const cli_args *a)
{
    const char *words[] = {"info"};
    int rv = no_arguments(a);

    return rv != 0 ? rv : control_print(a->data_dir, words, 1);
}

static int node_ls(const cli_args *a)
{
    const char *format = "table";
    const char *words[2] = {"node-ls", NULL};
    int rv;

    for (int i = 2; i < a->argc; i++) {
        if ((rv = cli_option(a->argc, a->argv, &i, "--format", &format)) != 0) {
            if (rv < 0) {
                return cli_usage_error("node", "--format needs table or json");
            }
        } else {
            return cli_usage_error("node", "unexpected argument \"%s\"", a->argv[i]);
        }
    }
    if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0) {
        return cli_usage_error("node", "--format must be table or json, not \"%s\"", format);
    }
    words[1] = format;
    return control_print(a->data_dir, words, 2);
}

int cli_node(const cli_args *a)
{
    if (a->argc < 2) {
        return cli_usage_error("node", "missing subcommand: ls or inspect");
    }
    if (strcmp(a->argv[1], "ls") == 0) {
        return node_ls(a);
    }
    if (strcmp(a->argv[1], "inspect") == 0) {
        const char *words[2] = {"node-inspect", NULL};
        if (a->argc != 3 || a->argv[2][0] == '-') {
            return cli_usage_error("node", "inspect takes exactly one node id");
        }
        words[1] = a->argv[2];
        return control_print(a->data_dir, words, 2);
    }
    return cli_usage_error("node", "unknown subcommand \"%s\": use ls or inspect", a->argv[1]);
}

int cli_join_token(const cli_args *a)
{
    const char *words[2] = {"join-token", NULL};
    const char *role = NULL;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    node_conf conf;
    char *token = NULL;
    int quiet = 0;
    int code = 0;
    int rv;

    for (int i = 1; i < a->argc; i++) {
        if (strcmp(a->argv[i], "-q") == 0 || strcmp(a->argv[i], "--quiet") == 0) {
            quiet = 1;
        } else if (role == NULL && (strcmp(a->argv[i], "worker") == 0 ||
                                    strcmp(a->argv[i], "manager") == 0)) {
            role = a->argv[i];
        } else {
            return cli_usage_error("join-token", "unexpected argument \"%s\": expected worker "
                                                 "or manager", a->argv[i]);
        }
    }
    if (role == NULL) {
        return cli_usage_error("join-token", "missing role: worker or manager");
    }
    words[1] = role;
    rv = control_call(a->data_dir, words, 2, &code, &token);
    if (rv != CLI_OK) {
        return rv;
    }
    if (code != 0) {
        cli_fail("%s", token ? token : "the request failed");
        free(token);
        return CLI_FAILED;
    }
    if (quiet) {
        printf("%s\n", token);
    } else if (conf_load(a->data_dir, &conf, errmsg) == 0) {
        int manager = strcmp(role, "manager") == 0;
        printf("To add a %s to this cluster, run:\n\n    swarmpki join --data-dir DIR "
               "%s--token %s %s\n\n",
               role, manager ? "--listen-addr HOST:PORT " : "", token, conf.advertise_addr);
    } else {
        printf("%s\n", token);
    }
    free(token);
    return CLI_OK;
}

int cli_update(const cli_args *a)
{
    const char *expiry = NULL;
    const char *words[2] = {"update-cert-expiry", NULL};
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char seconds_text[32];
    int64_t seconds;
    int rv;

    for (int i = 1; i < a->argc; i++) {
        if ((rv = cli_option(a->argc, a->argv, &i, "--cert-expiry", &expiry)) != 0) {
            if (rv < 0) {
                return cli_usage_error("update", "--cert-expiry needs a duration");
            }
        } else {
            return cli_usage_error("update", "unexpected argument \"%s\"", a->argv[i]);
        }
    }
    if (expiry == NULL) {
        return cli_usage_error("update", "nothing to update: give --cert-expiry DURATION");
    }
    if (util_duration_parse(expiry, &seconds, errmsg) != 0) {
        return cli_usage_error("update", "--cert-expiry: %s", errmsg);
    }
    if (seconds < CA_MIN_CERT_EXPIRY) {
        return cli_usage_error("update", "--cert-expiry %s is too short: the minimum is 1h",
                               expiry);
    }
    snprintf(seconds_text, sizeof(seconds_text), "%lld", (long long)seconds);
    words[1] = seconds_text;
    rv = control_print(a->data_dir, words, 2);
    if (rv == CLI_OK) {
        printf("Certificates issued from now on are valid for %s.\n", expiry);
    }
    return rv;
}
