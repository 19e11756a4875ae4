/* SPDX-License-Identifier: MIT */
/* cinderd command line: subcommand dispatch. */
#ifndef CINDER_CLI_H
#define CINDER_CLI_H

/** Run cinderd with the given arguments. @return the process exit code */
int cli_main(int argc, char **argv);

#endif
