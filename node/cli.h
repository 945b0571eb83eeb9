/* The command line: parsing, help texts and the commands that talk to a
 * running node through its control socket. */
#ifndef SWARMPKI_NODE_CLI_H
#define SWARMPKI_NODE_CLI_H

/* Exit statuses: 0 success, 1 the operation failed, 2 a usage error. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* Arguments of one command, with the global --data-dir taken out. */
typedef struct cli_args {
    const char *data_dir;
    int argc;
    char **argv; /* argv[0] is the command word */
} cli_args;

/* Prints "swarmpki: <message>" and the pointer to --help to stderr and
 * returns CLI_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "swarmpki: <message>" to stderr and returns CLI_FAILED. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Matches argv[*i] against --name VALUE or --name=VALUE. Returns 1 and sets
 * *value (advancing *i past a separate value), 0 for another argument, or
 * -1 when the value is missing. */
int cli_option(int argc, char **argv, int *i, const char *name, const char **value);

/* Commands served by a running node (control.c on the daemon side). */
int cli_stop(const cli_args *a);
int cli_info(const cli_args *a);
int cli_node(const cli_args *a);
int cli_join_token(const cli_args *a);
int cli_update(const cli_args *a);

/* Starts the node in data_dir: in this process, or with detach in a new
 * background process, returning once it serves. */
int cli_start_node(const char *data_dir, int detach);

/* Prints the help of a command (NULL: the overview) to stdout. */
void cli_help(const char *command);

#endif
