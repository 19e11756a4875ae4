/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's shared declarations: the devices, clients and the run
 * (struct lg, one per worker thread in the handshake and idle modes), and
 * what its files call of each other: loadgen.c (main and the modes, the
 * loop), loadgen_dev.c (the simulated devices), loadgen_http.c (HTTP API
 * clients, SSE streams), loadgen_mqtt.c (the MQTT client), loadgen_proc.c
 * (the measured process), loadgen_ota.c (ota mode), loadgen_workers.c
 * (worker threads, the B1s pinger), loadgen_soak.c and loadgen_hook.c
 * (the soak and sink modes).
 */
#ifndef CINDER_LOADGEN_H
#define CINDER_LOADGEN_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "fw_app.h"

enum kind { K_DEV = 1, K_HTTP, K_SSE, K_MQTT, K_SINK, K_LISTEN };
enum mq_role { MQ_PUB, MQ_SUB, MQ_IDLE };

#define EVENT_NAME "bench"
#define EVENT_SIZE 64
#define IOBUF 65536
/* the device timers' tick (loop_turn): about 200 ms, but no whole number
 * of ms, so that a rate's send times (10 ms apart at 100/s) do not keep
 * one place against the ticks and their bursts of pings */
#define TICK_US 199937u
/* soak mode's tick (lg.tick_us), the same for every rate and count: a
 * 10,000-device fleet's keep-alive pings, ~667 a second, in steps of
 * ~7 and not bursts of ~130 that a call or event sent behind one waits
 * for; and again no whole number of ms (neither 10 ms events nor 100 ms
 * calls keep a place against it) */
#define SOAK_TICK_US 9937u
/* ota mode: the devices' shared flash area (loadgen_ota.c) */
#define OTA_FLASH (256u * 1024u)

struct lg;

struct dev {
	enum kind kind;
	struct fw_app app;
	struct port port;
	struct lg *lg;
	char id[25];
	EVP_PKEY *key;
	EVP_PKEY_CTX *dec; /* decrypt context, made before the run */
	uint8_t pub[200];
	size_t pub_len;
	int fd;
	uint32_t mask;
	bool connected, writable, active, counted;
	bool ota_begun, installed, stop_now, hold_tx;
	uint64_t t_start;
	int32_t var;
	/* the last system call of its port that failed (sys_op NULL:
	 * none yet), for the message when devices do not get ready */
	const char *sys_op;
	int sys_errno;
	/* --ping-dir devices: the ping in flight */
	bool ping_out;
	unsigned ping_pongs;
	uint64_t ping_t0;
};

struct hc { /* HTTP keep-alive client, an SSE stream, a sink's peer */
	enum kind kind;
	struct lg *lg;
	int fd;
	bool busy, hdr_done;
	int status;
	uint64_t t0;
	size_t len;
	uint64_t got;
	size_t slot; /* a sink's peer: its index in the sink's peer list */
	char buf[IOBUF];
};

struct mq {
	enum kind kind;
	enum mq_role role;
	int fd;
	bool connacked;
	uint16_t pid;
	size_t len;
	uint64_t got;
	uint8_t buf[IOBUF];
};

struct listener { /* the sink's listening socket */
	enum kind kind;
	int fd;
};

struct lat {
	uint32_t *v; /* microseconds */
	size_t n, cap;
};

struct lg {
	int ep;
	unsigned nsrc; /* > 0: devices bind to 127.0.0.2 .. 127.0.0.(1+nsrc) */
	struct sockaddr_in dev_addr, api_addr, mq_addr;
	EVP_PKEY *server_key;
	struct port_crypto crypto;
	struct fw_modules modules;
	struct dev *devs;
	size_t ndev, next_dev, rr;
	/* per device (devs[j]: due[j]): the tick steps it once now_us()
	 * reaches this (0: at the next tick; UINT64_MAX: never); due_min:
	 * at most the least of them (see dev_sched) */
	uint64_t *due, due_min;
	/* the last tick: the devices it stepped for their timers (a
	 * keep-alive ping or its answer's time-out due); ticks so far */
	size_t tick_timed;
	uint64_t ticks;
	uint64_t tick_us; /* the ticks' period (0: TICK_US) */
	size_t targets;	  /* http: calls to the first N devices (0: all) */
	size_t ready, active;
	struct hc *http, *sse;
	size_t nhttp, nsse;
	struct mq *mqs;
	size_t nmq;
	const char *token, *path, *method, *body;
	/* events mode: API events named ev_name, req_limit in all; paced:
	 * sent on a schedule, not as each answer arrives */
	const char *ev_name;
	uint64_t req_sent, req_limit;
	bool paced;
	/* sink mode: answer nothing (stall); bodies that are no send time */
	bool stall;
	uint64_t sink_bad;
	char *ids_for_path;
	uint64_t t0;
	/* counters */
	uint64_t handshakes, hs_failed, sent, busy, http_ok, http_err;
	uint64_t sse_got, mq_sent, mq_got;
	struct lat lat;
	bool measuring;
	int qos;
	int pid;
	/* ota mode */
	uint8_t *image;
	size_t image_len, puts_next, puts_limit, puts_base;
	uint64_t flashed, ota_failed, ota_inflight, ota_inflight_max;
	uint64_t t_last_flashed;
	long rss_peak;
	/* the server key's EVP contexts, per thread (pkey_op) */
	EVP_PKEY_CTX *pk_ctx[3];
	EVP_PKEY *pk_key[3];
	/* a worker thread (handshake and idle modes) */
	pthread_t thread;
	size_t dev_base;  /* index of devs[0] in the whole set */
	size_t conc;	  /* handshake: its devices connecting at once */
	size_t pub_ready; /* ready as of its last loop turn (main reads) */
	bool pub_warm;	  /* its keys are warm (keys_warm), it waits */
	bool go;	  /* set by the main thread: start the devices */
	/* the pinger: ping each device every ping_us while pinging */
	bool pinger;
	uint64_t ping_us, ping_next_t, ping_t_first;
	struct lat ping_when; /* per answered ping (lat): sent at, ms */
	size_t ping_next;
	uint64_t pings, ping_lost, ping_busy;
	/* idle mode: the devices' own keep-alive pings (after 15 s of
	 * silence) answered while measuring; pongs_at: their count when
	 * the measured phase began */
	uint64_t pongs, pongs_at;
	/* mqtt mode: while measuring, each idle client (mqs[mq_idle0..])
	 * sends a PINGREQ every mq_ping_us, the clients staggered evenly
	 * over the period from mq_ping_t0, mq_ping_max in all; mq_pongs:
	 * PINGRESPs */
	uint64_t mq_ping_us, mq_ping_t0, mq_pings, mq_pongs;
	size_t mq_idle0, mq_ping_next, mq_ping_max;
	/* soak mode (loadgen_soak.c): told of each timed event an SSE
	 * stream reads (its send time, us) and of each HTTP answer, in
	 * place of the counters and lat above; soak is its state */
	void (*on_event)(struct lg *g, uint64_t t_sent);
	void (*on_answer)(struct lg *g, const struct hc *c);
	void *soak;
};

/* soak mode's settings (cinder-loadgen soak --help) */
struct soak_opts {
	double seconds, window_s; /* the run; one stats line per window */
	double rate, calls;	  /* events/s, function calls/s in all */
	double churn;		  /* % of the devices reconnected per minute */
	size_t streams, clients;  /* SSE streams, HTTP keep-alive clients */
	const char *sse_path;
	int pid; /* the server (its CPU per window) */
};

/* set by SIGTERM/SIGINT */
extern volatile sig_atomic_t g_stop;
/* the main thread's word to the workers */
extern atomic_bool w_quit, w_measure, w_ping;
/* handshake mode: a ready device is counted, closed and replaced */
extern bool hs_loop;

/* loadgen.c: utilities, sockets, the loop */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
uint64_t now_us(void);
uint32_t p_millis(void *ctx);
void lat_add(struct lat *l, uint64_t us);
double lat_pct(const struct lat *l, double p);
/* sort l's values, as lat_pct needs */
void lat_sort(struct lat *l);
void ep_set(struct lg *g, int fd, uint32_t mask, void *ptr, int op);
/* A blocking connect (clients of the HTTP API and MQTT), then
 * non-blocking with Nagle off; dies on failure */
int tcp_open(const struct sockaddr_in *a);
/* all of buf to fd, blocking; dies on failure */
void write_all(int fd, const void *buf, size_t len);
void loop_turn(struct lg *g, int timeout, uint64_t *last_tick);
bool run_until(struct lg *g, uint64_t until, double rate, uint64_t t_begin,
	       bool (*cond)(struct lg *));
bool streams_up(struct lg *g);
void publish_due(struct lg *g, double rate, uint64_t t_begin);

/* loadgen_http.c: HTTP API clients, SSE streams */
/* conc keep-alive clients of the HTTP API, watched for input. */
void http_clients_open(struct lg *g, size_t conc);
/* the microseconds waited (serving the devices) until the store has no
 * statements queued; UINT64_MAX when it did not drain within limit_us
 * or /v1/ping has no such figure */
uint64_t store_settle(struct lg *g, uint64_t limit_us);
/* 1: a whole HTTP message heads buf (len bytes, NUL-terminated), *hlen
 * its head's bytes, *total its bytes; 0: not yet; -1: it cannot fit in
 * cap bytes */
int http_framed(const char *buf, size_t len, size_t cap, size_t *hlen,
		size_t *total);
/* the next request of g's kind on c (path g->path, "{id}": a device) */
void http_send(struct lg *g, struct hc *c);
void sse_open(struct lg *g, struct hc *c, const char *path);
/* what came on c, an HTTP client: the answer counted, the next sent */
void http_read(struct lg *g, struct hc *c);
/* what came on c, an SSE stream: each timed event counted */
void sse_read(struct lg *g, struct hc *c);

/* loadgen_mqtt.c: the MQTT client */
/* m, the client i, connected (and subscribed if role is MQ_SUB) */
void mq_open(struct lg *g, struct mq *m, enum mq_role role, size_t i);
/* what came on m: CONNACK, PINGRESP, PUBLISH (timed, acked at QoS 1) */
void mq_read(struct lg *g, struct mq *m);
/* one event of dl bytes published on m; false when it was not sent */
bool mq_publish(struct lg *g, struct mq *m, const char *data, size_t dl);
/* the idle clients' PINGREQs due now (mqtt mode, measuring) */
void mq_ping_due(struct lg *g);

/* loadgen_dev.c: the simulated devices */
/* an RSA key file: the public one DER (the server's), else PEM private */
EVP_PKEY *read_key(const char *path, bool pub_der);
/* the device key read last, kept for the ids sharing it (lg_release
 * frees it) */
extern EVP_PKEY *last_key;
/* count devices of dir (devices.txt, ID.pem) into g->devs, not started */
void devs_load(struct lg *g, const char *dir, size_t count);
/* kind: 0 encrypt, 1 decrypt, 2 verify-recover; NULL on failure */
EVP_PKEY_CTX *pkey_ctx(EVP_PKEY *k, int kind);
void dev_start(struct lg *g, struct dev *d);
/* d disconnects and stops (counted out of active and ready) */
void dev_leave(struct lg *g, struct dev *d);
void dev_step(struct lg *g, struct dev *d);
/* when the tick must step d next (g->due), after anything changed it */
void dev_sched(struct lg *g, struct dev *d);
/* why devices are not ready: their states and most common last error,
 * into buf (for die) */
void devs_why(const struct dev *devs, size_t n, char *buf, size_t cap);
/* d's epoll mask brought up to date: input, and output while it
 * connects or has any queued */
void dev_rearm(struct dev *d);

/* loadgen_proc.c: the measured process, from /proc */
/*
 * The measured phases' server CPU. /proc/PID/stat counts in clock ticks
 * (10 ms), which is +-5% of a 20 s idle phase's 0.2 s (B2's idle CPU
 * bar is 1% of a core). The threads' schedstat run time (ns) is exact,
 * but a thread that exits takes its share with it; so the exact sum is
 * used unless the two disagree by more than the ticks explain.
 */
struct cpu_mark {
	double ticks_s; /* utime + stime, /proc/PID/stat */
	double run_s;	/* sum of /proc/PID/task/TID/schedstat, or -1 */
};
/* utime + stime of pid, seconds; 0 when pid <= 0 or gone */
double proc_cpu(int pid);
/* utime + stime of the process pid, or of its thread tid if tid > 0 */
double proc_cpu_of(int pid, int tid);
struct cpu_mark cpu_mark(int pid);
/* CPU seconds of pid since m (see struct cpu_mark) */
double cpu_since(int pid, const struct cpu_mark *m);
/* VmRSS of pid, kB; 0 when pid <= 0 or gone */
long proc_rss_kb(int pid);
/* CPU seconds of pid, its children and the children it reaped (the
   database server's postmaster and backends); -1 if unreadable */
double tree_cpu(int pid);
/* after - before of two tree_cpu() readings; -1 if either is -1 */
double cpu_diff(double before, double after);
/* the server process pid > 0 has exited (gone or a zombie) */
bool server_gone(int pid);
/* this process's CPU (all threads), seconds */
double self_cpu(void);

/* loadgen_ota.c: ota mode; the devices' flash (port calls, the shared
 * area) and OTA milestones (fw_app notify), the API's flash PUTs */
int p_flash(void *ctx, uint32_t off, size_t len);
int p_flash_rd(void *ctx, uint32_t off, uint8_t *b, size_t len);
int p_flash_wr(void *ctx, uint32_t off, const uint8_t *b, size_t len);
void ota_note(struct fw_app *a, enum fw_app_note what, const char *x,
	      const char *y, void *arg);
/* the next device's flash on c, a multipart PUT of the image */
void ota_put_send(struct lg *g, struct hc *c);

/* loadgen_soak.c: soak mode, once the devices are connected */
int soak_main(struct lg *g, const struct soak_opts *o);

/* loadgen_hook.c: sink mode (B5's webhook target) */
int sink_main(struct lg *g, const char *port_file, const char *stats_file);
void sink_accept(struct lg *g, struct listener *l);
void sink_read(struct lg *g, struct hc *c);

/* loadgen_workers.c */
void devs_prepare(struct lg *g);
struct lg *workers_make(struct lg *g, size_t n, size_t conc);
void workers_run(struct lg *ws, size_t n);
void workers_wait_warm(struct lg *ws, size_t n);
void workers_go(struct lg *ws, size_t n);
size_t workers_ready(struct lg *ws, size_t n);
bool workers_wait_ready(struct lg *ws, size_t n, size_t want, uint64_t until);
void workers_join(struct lg *g, struct lg *ws, size_t n);
bool ping_realtime(pthread_t t);
char *ping_seconds_json(const struct lg *p);
double thread_cpu(pthread_t t);
void sleep_until(uint64_t until);

#endif
