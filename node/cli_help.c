#include <stdio.h>
#include <string.h>

#include "node/cli.h"

typedef struct help_text {
    const char *command;
    const char *text;
} help_text;

static const char overview[] =
    "Usage: swarmpki [--data-dir DIR] COMMAND [OPTIONS]\n"
    "\n"
    "swarmpki runs the public key infrastructure of a container cluster: managers\n"
    "keep the root CA and issue certificates, and nodes authenticate each other\n"
    "with mutual TLS.\n"
    "\n"
    "Commands that start a node:\n"
    "  init         create a cluster and run its first manager\n"
    "  join         join a cluster with a join token and run the node\n"
    "  run          start an existing node from its data directory\n"
    "\n"
    "Commands for a running node:\n"
    "  stop         stop the node cleanly\n"
    "  info         show the cluster id, node id, role, manager and certificate\n"
    "  node         list nodes (node ls) or show one (node inspect ID); managers only\n"
    "  join-token   print the worker or manager join token; managers only\n"
    "  update       change cluster settings such as --cert-expiry; managers only\n"
    "\n"
    "Global options:\n"
    "  --data-dir DIR  the node's data directory; default $SWARMPKI_DATA_DIR, else\n"
    "                  /var/lib/swarmpki for root and ~/.local/share/swarmpki otherwise\n"
    "  --help          show help for a command, as in 'swarmpki init --help'\n"
    "  --version       print the version\n"
    "\n"
    "Every command takes --data-dir DIR, before or after the command name.\n"
    "\n"
    "Exit status: 0 on success, 1 when the operation failed, 2 for a usage error.\n";

static const help_text texts[] = {
    {"init",
     "Usage: swarmpki init --listen-addr HOST:PORT [OPTIONS]\n"
     "       swarmpki init --force-new-cluster [--detach]\n"
     "\n"
     "Creates a new cluster in the data directory: a cluster id, a root CA, a worker\n"
     "and a manager join token and this node's manager certificate. Then runs the node.\n"
     "\n"
     "With --force-new-cluster, restarts the stopped manager of the data directory as\n"
     "the only member of its cluster, keeping its cluster id, root CA, tokens and\n"
     "nodes. Use it when a majority of managers is lost for good.\n"
     "\n"
     "Options:\n"
     "  --listen-addr HOST:PORT     address the manager listens on (required)\n"
     "  --advertise-addr HOST:PORT  address other nodes use to reach this manager;\n"
     "                              default: the listen address\n"
     "  --cert-expiry DURATION      lifetime of issued certificates, such as 2160h,\n"
     "                              90m or 1h30m; minimum 1h, default 2160h (90 days)\n"
     "  -d, --detach                run in the background and return once the node\n"
     "                              serves; its log goes to DIR/swarmpki.log\n"},
    {"join",
     "Usage: swarmpki join --token TOKEN [OPTIONS] MANAGER_HOST:PORT\n"
     "\n"
     "Joins the cluster of the manager at MANAGER_HOST:PORT and runs the node. The\n"
     "token's digest pins the cluster's root CA, so nothing the manager sends is\n"
     "trusted before it matches. The token decides the role. A manager needs\n"
     "--listen-addr, and the leader must reach it at its advertised address during\n"
     "the join; with --detach the command returns once it is a Raft member.\n"
     "\n"
     "Options:\n"
     "  --token TOKEN               the SWMTKN-1-... join token (required)\n"
     "  --listen-addr HOST:PORT     for managers: the address to listen on\n"
     "  --advertise-addr HOST:PORT  for managers: the address others use; default:\n"
     "                              the listen address\n"
     "  -d, --detach                run in the background and return once the node\n"
     "                              serves; its log goes to DIR/swarmpki.log\n"},
    {"run",
     "Usage: swarmpki run [--detach]\n"
     "\n"
     "Starts the node stored in the data directory, after a stop, a crash or a reboot.\n"
     "\n"
     "Options:\n"
     "  -d, --detach  run in the background and return once the node serves\n"},
    {"stop",
     "Usage: swarmpki stop\n"
     "\n"
     "Stops the node of the data directory cleanly and waits until it has exited.\n"
     "A leader first hands leadership to another manager.\n"},
    {"info",
     "Usage: swarmpki info\n"
     "\n"
     "Shows the cluster id, node id, role, manager address and certificate expiry.\n"
     "On a manager, also the lifetime of new certificates, the Raft term, leader,\n"
     "commit and applied index, and each member with its id, node id, address,\n"
     "voter or learner, and whether this manager reaches it.\n"},
    {"node",
     "Usage: swarmpki node ls [--format table|json]\n"
     "       swarmpki node inspect NODE_ID\n"
     "\n"
     "Lists every node with its id, hostname, role, status (ready or down, from\n"
     "session heartbeats), certificate serial and expiry, or shows one node as JSON.\n"
     "The current node is marked with '*'. Run on a manager.\n"
     "\n"
     "The MANAGER column (manager_status in JSON) shows for managers whether each is\n"
     "the leader, reachable or unreachable from this manager; the JSON field addr is\n"
     "a manager's advertised address. A node that joined through another manager\n"
     "shows up here"
     " once this manager has applied its entry, usually within a second.\n"},
    {"join-token",
     "Usage: swarmpki join-token [-q] worker|manager\n"
     "\n"
     "Prints the join command for a worker or a manager. With -q, prints only the\n"
     "token. Treat tokens as secrets: anyone with one can join the cluster.\n"},
    {"update",
     "Usage: swarmpki update --cert-expiry DURATION\n"
     "\n"
     "Sets the lifetime of certificates issued from now on, such as 2160h, 90m or\n"
     "1h30m. The minimum is 1h. Certificates already issued keep their expiry.\n"},
};

void cli_help(const char *command)
{
    if (command != NULL) {
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
            if (strcmp(texts[i].command, command) == 0) {
                fputs(texts[i].text, stdout);
                fputs("\nThe node's data directory comes from --data-dir DIR (before or after "
                      "the\ncommand name), else $SWARMPKI_DATA_DIR; see 'swarmpki --help'.\n",
                      stdout);
                return;
            }
        }
    }
    fputs(overview, stdout);
}
