/* SPDX-License-Identifier: MIT */
/*
 * `cinderd firmware inspect|make-module|plan|import` (see docs/healer.md).
 */
#ifndef CINDER_HEALER_FWCLI_H
#define CINDER_HEALER_FWCLI_H

/**
 * Run the firmware subcommand.
 * @param argc, argv the arguments after "firmware"
 * @return the process exit status (0 ok, 1 failure, 2 usage)
 */
int fwcli_main(int argc, char **argv);

#endif
