/* SPDX-License-Identifier: MIT */
/*
 * main() for fuzz targets in builds without libFuzzer: replays every file
 * named on the command line, and every regular file inside each named
 * directory, through LLVMFuzzerTestOneInput(). Each input is copied into
 * an exact-size heap block so that sanitizers catch over-reads.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Corpus files are small seeds; refuse anything absurd. */
#define REPLAY_MAX_INPUT (1024 * 1024)

static int
run_file(const char *path, unsigned *count)
{
	FILE *f = NULL;
	uint8_t *buf = NULL;
	long size;
	int r = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "%s: cannot size file\n", path);
		goto out;
	}
	if (size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "%s: larger than %d bytes\n", path,
			REPLAY_MAX_INPUT);
		goto out;
	}
	if ((buf = malloc(size > 0 ? (size_t)size : 1)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", path);
		goto out;
	}
	if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "%s: short read\n", path);
		goto out;
	}
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	(*count)++;
	r = 0;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return r;
}

static int
run_dir(const char *path, unsigned *count)
{
	DIR *d;
	struct dirent *de;
	char sub[4096];
	struct stat st;
	int r = 0;

	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
				     de->d_name) >= sizeof(sub)) {
			r = -1;
			continue;
		}
		if (stat(sub, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(sub, count) != 0)
			r = -1;
	}
	closedir(d);
	return r;
}

int
main(int argc, char **argv)
{
	struct stat st;
	unsigned count = 0;
	int i, failed = 0;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			failed = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) != 0)
				failed = 1;
		} else if (run_file(argv[i], &count) != 0) {
			failed = 1;
		}
	}
	printf("%s: %u inputs replayed\n", argv[0], count);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
