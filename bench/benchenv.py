# SPDX-License-Identifier: MIT
"""bench/benchenv.py: what bench/run and bench/soak share: a private
PostgreSQL (tests/with-pg), a cinderd of their own with raised limits,
device keys registered with COPY, the bench user's token, and
cinder-loadgen runs against them (class Env); /proc readings of cinderd.
"""
import argparse
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
# the script's name in messages: bench/run or bench/soak
PROG = "bench/" + os.path.basename(sys.argv[0])


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, deadline_s=30.0):
    t = time.monotonic() + deadline_s
    while time.monotonic() < t:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.002)
    return False


class Env:
    """The build, the database, cinderd and the peers of one run."""

    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.cinderd = os.path.join(self.build, "src/cinderd")
        self.sim = os.path.join(self.build, "firmware-stubs/cinder-sim")
        self.lg_exe = os.path.join(self.build, "bench/cinder-loadgen")
        self.mhd = os.path.join(self.build, "bench/mhd_hello")
        for p in (self.cinderd, self.sim, self.lg_exe, self.mhd):
            if not os.access(p, os.X_OK):
                sys.exit(PROG + ": %s missing: build first (make -C %s)"
                         % (p, self.build))
        # One bench/run per build directory at a time: a second one
        # would remove this one's bench-tmp and make a new server key
        # under its running cinderd, and every device handshake of this
        # one's next cinder-loadgen would fail ("only 0 of 10000 devices
        # ready"). The second waits.
        self.lock = open(os.path.join(self.build, "bench-tmp.lock"), "a+")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.seek(0)
            log("waiting for the bench/run using %s (pid %s)" % (
                self.build, self.lock.read().strip() or "?"))
            fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.lock.seek(0)
        self.lock.truncate()
        self.lock.write("%d\n" % os.getpid())
        self.lock.flush()
        self.dir = os.path.join(self.build, "bench-tmp")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.pg = dict(host=os.environ["CINDER_TEST_PGHOST"],
                       port=os.environ["CINDER_TEST_PGPORT"],
                       user=os.environ["CINDER_TEST_PGUSER"])
        self.pg_pid = postmaster_pid(self.pg["host"])
        self.proc = None
        self.db = None
        self.token = None

    # ---- PostgreSQL
    def psql(self, sql, db="postgres", stdin=None):
        cmd = ["psql", "-X", "-q", "-At", "-h", self.pg["host"], "-p",
               self.pg["port"], "-U", self.pg["user"], "-d", db]
        if sql is not None:
            cmd += ["-c", sql]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(PROG + ": psql: " + r.stderr)
        return r.stdout.strip()

    def new_db(self):
        self.db = "bench_%d" % int(time.time() * 1000)
        self.psql("CREATE DATABASE %s" % self.db)

    # ---- cinderd
    def conf(self, extra=""):
        self.dev_port, self.api_port = free_port(), free_port()
        path = os.path.join(self.dir, "cinder.conf")
        with open(path, "w") as f:
            f.write(f"""database_url "host={self.pg['host']} port={self.pg['port']} user={self.pg['user']} dbname={self.db}"
device_listen 127.0.0.1:{self.dev_port}
api_listen 127.0.0.1:{self.api_port}
server_key {self.dir}/server_key.pem
sql_dir {TOP}/sql
log_level warn
log_file {self.dir}/cinderd.log
max_handshakes 100000
max_sessions 1000000
keepalive_timeout 600
publish_rate 1000000
publish_burst 1000000
rate_limits all=1000000000,token=1000000,lock=1000000
webhook_allow_nets 127.0.0.1/32
webhook_queue_max 1000000
webhook_max_inflight 64
webhook_user_inflight 256
device_cache_linger_s 1
{extra}""")
        return path

    def start(self, extra=""):
        cfg = self.conf(extra)
        if not os.path.exists(os.path.join(self.dir, "server_key.pem")):
            subprocess.run([self.cinderd, "keygen", "-c", cfg], check=True,
                           capture_output=True)
        t0 = time.monotonic()
        # BENCH_CINDERD_WRAP (e.g. "heaptrack -o /tmp/ht") runs cinderd
        # under a tool; the figures are then the tool's, not cinderd's
        wrap = os.environ.get("BENCH_CINDERD_WRAP", "").split()
        self.proc = subprocess.Popen(wrap + [self.cinderd, "run", "-c", cfg],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        if not wait_port(self.api_port) or not wait_port(self.dev_port) \
                or self.proc.poll() is not None:
            if self.proc.poll() is not None and not getattr(self, "retry",
                                                            False):
                # a port was taken between free_port() and the bind
                self.retry = True
                self.proc = None
                try:
                    return self.start(extra)
                finally:
                    self.retry = False
            sys.exit(PROG + ": cinderd did not start; see "
                     + self.dir + "/cinderd.log")
        self.cinderd_pid = self.proc.pid
        if wrap:
            self.cinderd_pid = wrapped_pid(self.proc.pid, self.cinderd)
        return time.monotonic() - t0

    def cold_start(self, devices):
        """B7: one start of cinderd timed from its exec, on this process's
        monotonic clock: until both ports accept (polled from here), and
        until the first device of devices (cinder-loadgen's cold mode,
        armed before the exec) has its handshake served; with what
        cinderd's start-up line says it spent on PostgreSQL."""
        cfg = self.conf("log_level notice\n")
        logf = os.path.join(self.dir, "cinderd.log")
        open(logf, "w").close()
        lg = subprocess.Popen(
            [self.lg_exe, "cold", "--dir", devices, "--count", "1",
             "--server", "127.0.0.1:%d" % self.dev_port, "--server-key",
             os.path.join(self.dir, "server_key.pub.der"), "--seconds",
             "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        if lg.stdout.readline().strip() != "# armed":
            err = lg.stderr.read().strip()
            sys.exit(PROG + ": cinder-loadgen cold (%s): %s" % (
                exit_status(lg.wait()), err or "it printed no message"))
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.cinderd, "run", "-c", cfg],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.cinderd_pid = self.proc.pid
        up = wait_port(self.api_port) and wait_port(self.dev_port)
        t_listen = time.monotonic() - t0
        out, err = lg.communicate(60)
        if not up or lg.returncode != 0 or self.proc.poll() is not None:
            sys.exit(PROG + ": B7 start failed (ports up: %s; cinderd: %s; "
                     "cinder-loadgen %s: %s); see %s" % (
                         up, "running" if self.proc.poll() is None else
                         exit_status(self.proc.returncode),
                         exit_status(lg.returncode),
                         err.strip() or "no message", logf))
        res = json.loads([x for x in out.splitlines()
                          if x.startswith("{")][-1])
        self.stop()
        with open(logf) as f:
            m = re.search(r"start-up: listening ([\d.]+) ms after main\(\) "
                          r"\(database connect ([\d.]+) ms, migration check "
                          r"([\d.]+) ms\), ready ([\d.]+) ms; ([\d.]+) ms of "
                          r"CPU before main", f.read())
        if m is None:
            sys.exit(PROG + ": no start-up line in " + logf)
        db = float(m.group(2)) + float(m.group(3))
        return dict(listen_ms=t_listen * 1000,
                    listen_nopg_ms=t_listen * 1000 - db,
                    dev_port_ms=res["listen_us"] / 1000.0 - t0 * 1000,
                    handshake_ms=res["ready_us"] / 1000.0 - t0 * 1000,
                    db_connect_ms=float(m.group(2)),
                    migration_check_ms=float(m.group(3)),
                    cinderd_listen_ms=float(m.group(1)),
                    cinderd_ready_ms=float(m.group(4)),
                    cpu_before_main_ms=float(m.group(5)))

    @property
    def pid(self):
        """cinderd's own pid: under BENCH_CINDERD_WRAP the tool's child
        (heaptrack, valgrind), not the tool, so that RSS and CPU are
        cinderd's and the run lasts as long as without the tool."""
        return self.cinderd_pid

    def stop(self):
        # cinderd (and a BENCH_CINDERD_WRAP tool) run in a session of
        # their own: signal the whole group, or a wrapper's child stays
        if self.proc is not None:
            pgid = self.proc.pid
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None

    def http(self, method, path, body=None, auth=None, basic=None,
             ctype="application/x-www-form-urlencoded"):
        import http.client
        import base64
        c = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=30)
        h = {"Content-Type": ctype}
        if auth:
            h["Authorization"] = "Bearer " + auth
        if basic:
            h["Authorization"] = "Basic " + base64.b64encode(
                basic.encode()).decode()
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def login(self):
        st, _ = self.http("POST", "/v1/users",
                          "username=bench@example.com&password=benchpass1")
        if st != 200:
            sys.exit(PROG + ": sign-up failed: %d" % st)
        st, body = self.http("POST", "/oauth/token",
                             "grant_type=password&username=bench@example.com"
                             "&password=benchpass1&expires_in=0",
                             basic="particle:particle")
        if st != 200:
            sys.exit(PROG + ": login failed: %d %s" % (st, body))
        self.token = json.loads(body)["access_token"]

    # ---- devices: keys are made once per build directory and reused
    def keys(self, n, ping=False):
        """n device keys; ping: another set (other ids), B1s's devices
        that are connected before the storm and ping throughout."""
        d = os.path.join(self.build, "bench-keys",
                         ("ping-%d" if ping else "%d") % n)
        if not os.path.exists(os.path.join(d, "done")):
            shutil.rmtree(d, ignore_errors=True)
            log("making %d device keys in %s (once)" % (n, d))
            os.makedirs(d)
            subprocess.run([self.sim, "provision", "--count", str(n), "--dir",
                            d, "--prefix", ("bef%05x" if ping else "bee%05x")
                            % n], check=True, stdout=subprocess.DEVNULL)
            open(os.path.join(d, "done"), "w").close()
        return d

    def alias_keys(self, n, base):
        """n device ids sharing the keys of base (each key used by
        consecutive ids): 100,000 sessions without 100,000 RSA keys."""
        d = os.path.join(self.build, "bench-keys", "alias-%d" % n)
        if os.path.exists(os.path.join(d, "done")):
            return d
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        with open(os.path.join(base, "devices.txt")) as f:
            bids = [x.strip() for x in f if x.strip()]
        per = (n + len(bids) - 1) // len(bids)
        with open(os.path.join(d, "devices.txt"), "w") as out:
            for i in range(n):
                did = "a11a%020x" % i
                b = bids[i // per]
                for ext in (".pem", ".pub.pem"):
                    os.symlink(os.path.join(base, b + ext),
                               os.path.join(d, did + ext))
                out.write(did + "\n")
        open(os.path.join(d, "done"), "w").close()
        return d

    def register(self, d, limit=None):
        """All devices of d (the first limit) owned by the bench user, in
        one COPY."""
        rows = ["COPY devices (device_id, public_key, owner_id) FROM STDIN "
                "WITH (FORMAT csv);"]
        uid = self.psql("SELECT id FROM users WHERE username = "
                        "'bench@example.com'", self.db)
        with open(os.path.join(d, "devices.txt")) as f:
            ids = [x.strip() for x in f if x.strip()][:limit]
        for i in ids:
            with open(os.path.join(d, i + ".pub.pem")) as k:
                rows.append('%s,"%s",%s' % (i, k.read(), uid))
        rows.append("\\.")
        self.psql(None, self.db, "\n".join(rows) + "\n")
        return len(ids)

    def perf_start(self, what, pid=None):
        """With --perf: perf record cinderd (or the process pid, a peer)
        into DIR/NN-WHAT.data until perf_stop(); else None."""
        if not self.args.perf:
            return None
        os.makedirs(self.args.perf, exist_ok=True)
        self.nperf = getattr(self, "nperf", 0) + 1
        out = os.path.join(self.args.perf, "%02d-%s.data" % (self.nperf,
                                                             what))
        return subprocess.Popen(
            ["perf", "record", "-q", "-F", "999", "--call-graph",
             os.environ.get("BENCH_PERF_CALLGRAPH", "fp"), "-p",
             str(pid if pid is not None else self.pid), "-o", out],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def perf_stop(self, perf):
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()

    def loadgen(self, mode, *opts, devices=None, pid=None, timeout=900,
                on_measure=None, on_line=None):
        """Run cinder-loadgen MODE against this cinderd; its last JSON
        line. on_measure(): when its measured phase begins; on_line(l):
        each line it prints, as it prints it (bench/soak's windows)."""
        cmd = [self.lg_exe, mode]
        if devices is not None:
            cmd += ["--dir", devices, "--server",
                    "127.0.0.1:%d" % self.dev_port, "--server-key",
                    os.path.join(self.dir, "server_key.pub.der")]
        cmd += ["--api", "127.0.0.1:%d" % self.api_port]
        if self.token:
            cmd += ["--token", self.token]
        cmd += ["--pid", str(pid if pid is not None else self.pid)]
        if self.pg_pid:
            cmd += ["--pg-pid", str(self.pg_pid)]
        cmd += [str(o) for o in opts]
        lg = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        self.lg_proc = lg  # for on_line callbacks (bench/allocs stops it)
        perf = None
        lines = []
        for line in lg.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line)
            if line.startswith("# measuring") and on_measure is not None:
                on_measure()
            if line.startswith("# measuring") and (pid is None or
                                                   mode == "mqtt"):
                # profile the measured phase only, not the connect phase;
                # Mosquitto the same way (DIR/NN-mqtt.data)
                perf = self.perf_start(mode, pid)
        err = self.loadgen_err = lg.stderr.read()
        rc = lg.wait(timeout)
        self.perf_stop(perf)
        if rc != 0:
            sys.exit(PROG + ": %s failed (%s): %s" % (
                " ".join(cmd), exit_status(rc),
                err.strip() or "it printed no message"))
        r = argparse.Namespace(stdout="".join(lines))
        line = [x for x in r.stdout.splitlines() if x.startswith("{")][-1]
        res = json.loads(line)
        log("%s: %s" % (mode, line))
        return res


def exit_status(rc):
    """A Popen returncode in words: the exit status or the signal."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "signal %d" % -rc
        return "killed by %s" % name
    return "exit status %d" % rc


def postmaster_pid(sock_dir):
    """The pid of tests/with-pg's postmaster (the first line of
    DIR/data/postmaster.pid beside DIR/sock), or None: cinder-loadgen
    then leaves PostgreSQL's CPU out."""
    path = os.path.join(os.path.dirname(os.path.abspath(sock_dir)),
                        "data", "postmaster.pid")
    try:
        with open(path) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def pg_cpu_s(res):
    """PostgreSQL's CPU over a loadgen result's measured phase, or None
    when it was not read."""
    v = res.get("pg_cpu_s", -1)
    return v if v >= 0 else None


def proc_cpu_s(pid):
    """utime + stime of pid in seconds (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid):
    """CPU seconds of a process tree one level deep, as cinder-loadgen's
    tree_cpu() (bench/loadgen_proc.c) reads it: pid (a postmaster) with
    the children it has reaped (utime + stime + cutime + cstime), and
    its children as they run now (proc_cpu_s()). Raises OSError when pid
    or its list of children cannot be read."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    total = (sum(int(v) for v in rest[11:15]) /
             os.sysconf("SC_CLK_TCK"))
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        kids = [int(k) for k in f.read().split()]
    for k in kids:
        try:
            total += proc_cpu_s(k)
        except OSError:
            pass  # ended between the list and its read
    return total


def wrapped_pid(top, exe):
    """The process running exe in top's process tree (top itself when it
    runs exe, or when none is found: a tool that does not fork)."""
    want = os.path.realpath(exe)
    seen, todo = set(), [top]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            if os.path.realpath("/proc/%d/exe" % pid) == want:
                return pid
        except OSError:
            pass
        try:
            for t in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return top


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def under_pg(script):
    """Run script again under a throwaway PostgreSQL (tests/with-pg),
    unless this is that run; then raise the descriptor limit (100,000
    sessions need 100,000 descriptors in cinderd and in the generator):
    the hard limit too where allowed (root)."""
    if "CINDER_TEST_PGHOST" not in os.environ:
        subprocess.run([os.path.join(TOP, "scripts", "deps"), "--bench"],
                       check=True)
        os.execv(os.path.join(TOP, "tests", "with-pg"),
                 [os.path.join(TOP, "tests", "with-pg"),
                  sys.executable, os.path.abspath(script)] + sys.argv[1:])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
    except (ValueError, OSError):
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
