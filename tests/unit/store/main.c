#include <sys/stat.h>

#include "helpers.h"

int main(void)
{
    int failed = 0;

    /* The kernel applies the umask to the modes the store requests; 022
     * keeps them whole, so the mode checks test the store, not the shell. */
    umask(022);
    failed += run_env_tests();
    failed += run_log_tests();
    failed += run_table_tests();
    failed += run_command_tests();
    failed += run_snapshot_tests();
    failed += run_snapshot_input_tests();
    return failed == 0 ? 0 : 1;
}
