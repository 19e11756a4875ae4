/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's readings of the measured server from /proc (its CPU,
 * whole or one thread's, its RSS, whether it is still there), of the
 * database server beside it (a process tree's CPU) and of the
 * generator's own CPU.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "loadgen.h"

/* The CPU fields of a /proc stat file, in clock ticks: utime + stime,
   and cutime + cstime (its reaped children's) in *reaped; false if the
   file is gone or unreadable. */
static bool
stat_ticks(const char *path, unsigned long *own, unsigned long *reaped)
{
	char buf[1024], *p;
	unsigned long ut, st;
	long cut, cst;
	FILE *f;
	size_t n;

	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return false;
	/* after ") ": state is field 3; utime 14, stime 15, cutime 16,
	   cstime 17 */
	if (sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld "
		   "%ld",
		   &ut, &st, &cut, &cst) != 4)
		return false;
	*own = ut + st;
	*reaped = (unsigned long)(cut > 0 ? cut : 0) +
		  (unsigned long)(cst > 0 ? cst : 0);
	return true;
}

/* utime + stime of the process pid, or of its thread tid if tid > 0 */
double
proc_cpu_of(int pid, int tid)
{
	char path[64];
	unsigned long own, reaped;

	if (pid <= 0)
		return 0;
	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!stat_ticks(path, &own, &reaped))
		return 0;
	return (double)own / (double)sysconf(_SC_CLK_TCK);
}

double
proc_cpu(int pid)
{
	return proc_cpu_of(pid, 0);
}

/*
 * CPU seconds of a process tree one level deep: pid (PostgreSQL's
 * postmaster), its children as they run now (the backends), and those
 * it has reaped (cutime + cstime: a backend or worker that exited keeps
 * counting). -1 if pid cannot be read. Between two readings a child
 * that exits moves from the second term to the third, so the difference
 * stays its CPU in between (10 ms ticks). A child reaped while one
 * reading runs (after pid's line, before its own) is missed by that
 * reading alone: a narrow race, against a phase's hundreds of ticks.
 */
double
tree_cpu(int pid)
{
	char path[64];
	unsigned long own, reaped, sum;
	FILE *f;
	int child;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (pid <= 0 || !stat_ticks(path, &own, &reaped))
		return -1;
	sum = own + reaped;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fscanf(f, "%d", &child) == 1) {
		snprintf(path, sizeof(path), "/proc/%d/stat", child);
		if (stat_ticks(path, &own, &reaped))
			sum += own; /* gone: see above */
	}
	fclose(f);
	return (double)sum / (double)sysconf(_SC_CLK_TCK);
}

double
cpu_diff(double before, double after)
{
	return before >= 0 && after >= before ? after - before : -1;
}

static double
proc_run_s(int pid)
{
	char path[64], buf[128];
	unsigned long long ns, sum = 0;
	struct dirent *e;
	DIR *d;
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (pid <= 0 || (d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat",
			 pid, e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue; /* the thread has just gone */
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    sscanf(buf, "%llu", &ns) == 1) {
			sum += ns;
			n++;
		}
		fclose(f);
	}
	closedir(d);
	return n > 0 ? (double)sum / 1e9 : -1;
}

struct cpu_mark
cpu_mark(int pid)
{
	struct cpu_mark m;

	m.ticks_s = proc_cpu(pid);
	m.run_s = proc_run_s(pid);
	return m;
}

/* CPU seconds of pid since m (see struct cpu_mark) */
double
cpu_since(int pid, const struct cpu_mark *m)
{
	struct cpu_mark now = cpu_mark(pid);
	double dt = now.ticks_s - m->ticks_s, dr = now.run_s - m->run_s;
	double slack = 2.0 / (double)sysconf(_SC_CLK_TCK) + 0.01 * dt;

	if (m->run_s >= 0 && now.run_s >= 0 && dr >= 0 &&
	    (dt > dr ? dt - dr : dr - dt) <= slack)
		return dr;
	return dt;
}

long
proc_rss_kb(int pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

bool
server_gone(int pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && (p[2] == 'Z' || p[2] == 'X');
}

double
self_cpu(void)
{
	struct rusage r;

	getrusage(RUSAGE_SELF, &r);
	return (double)r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 +
	       (double)r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}
