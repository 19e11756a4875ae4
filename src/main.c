/* SPDX-License-Identifier: MIT */
/* cinderd entry point: only main(). Everything else lives in libcinder.a. */
#include "config.h"

#include "cli.h"

int
main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
