#!/bin/sh
# Regenerate the autotools files. Needs autoconf, automake and autoconf-archive.
set -e
cd "$(dirname "$0")"
if [ ! -f /usr/share/aclocal/ax_check_compile_flag.m4 ]; then
	echo "autogen.sh: autoconf-archive is missing (apt-get install autoconf-archive)" >&2
	exit 1
fi
autoreconf -fi
