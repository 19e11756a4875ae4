/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's MQTT 3.1.1 client for the Mosquitto peer (mqtt mode):
 * publishers, subscribers that time each event, and idle connections
 * that may send PINGREQs.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

static size_t
mq_hdr(uint8_t *out, uint8_t type, size_t rem)
{
	size_t i = 0;

	out[i++] = type;
	do {
		uint8_t b = rem % 128;
		rem /= 128;
		out[i++] = (uint8_t)(b | (rem > 0 ? 0x80 : 0));
	} while (rem > 0);
	return i;
}

void
mq_open(struct lg *g, struct mq *m, enum mq_role role, size_t i)
{
	uint8_t pkt[128], var[64];
	size_t n, vl = 0;
	int cl = snprintf((char *)var + 12, 40, "lg%zu-%d", i, (int)getpid());

	m->kind = K_MQTT;
	m->role = role;
	m->fd = tcp_open(&g->mq_addr);
	memcpy(var, "\0\4MQTT\4\2\0\x3c", 10); /* level 4, clean, 60 s */
	var[10] = 0;
	var[11] = (uint8_t)cl;
	vl = 12 + (size_t)cl;
	n = mq_hdr(pkt, 0x10, vl);
	memcpy(pkt + n, var, vl);
	write_all(m->fd, pkt, n + vl);
	if (role == MQ_SUB) {
		static const char topic[] = EVENT_NAME;
		size_t tl = sizeof(topic) - 1;
		n = mq_hdr(pkt, 0x82, 2 + 2 + tl + 1);
		pkt[n++] = 0;
		pkt[n++] = 1;
		pkt[n++] = 0;
		pkt[n++] = (uint8_t)tl;
		memcpy(pkt + n, topic, tl);
		n += tl;
		pkt[n++] = (uint8_t)g->qos;
		write_all(m->fd, pkt, n);
	}
	ep_set(g, m->fd, EPOLLIN, m, EPOLL_CTL_ADD);
}

static void
mq_packet(struct lg *g, struct mq *m, const uint8_t *p, size_t len)
{
	uint8_t type = p[0] >> 4;

	if (type == 2) { /* CONNACK */
		m->connacked = true;
	} else if (type == 13) { /* PINGRESP */
		g->mq_pongs++;
	} else if (type == 3 && len >= 4) { /* PUBLISH */
		/* p[0] is the type byte, then the variable header */
		size_t tl = (size_t)p[1] << 8 | p[2], off = 3 + tl;

		if (((p[0] >> 1) & 3) > 0) {
			uint8_t ack[4] = {0x40, 2, p[off], p[off + 1]};
			write_all(m->fd, ack, 4);
			off += 2;
		}
		m->got++;
		if (g->measuring && off < len && p[off] == 'T') {
			g->mq_got++;
			lat_add(&g->lat,
				now_us() - strtoull((const char *)p + off + 1,
						    NULL, 10));
		}
	}
}

void
mq_read(struct lg *g, struct mq *m)
{
	ssize_t n = recv(m->fd, m->buf + m->len, sizeof(m->buf) - 1 - m->len,
			 MSG_DONTWAIT);
	size_t off = 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		die("MQTT connection closed by the broker");
	m->len += (size_t)n;
	for (;;) {
		size_t rem = 0, mul = 1, i = off + 1;
		uint8_t save;

		while (i < m->len && i < off + 5) {
			rem += (m->buf[i] & 127u) * mul;
			mul *= 128;
			if ((m->buf[i++] & 128u) == 0)
				goto have_len;
		}
		break;
	have_len:
		if (m->len - i < rem)
			break;
		/* hand over: byte 0 = type/flags, then the variable header;
		 * the payload is NUL-terminated for strtoull */
		save = i + rem < sizeof(m->buf) ? m->buf[i + rem] : 0;
		if (i + rem < sizeof(m->buf))
			m->buf[i + rem] = 0;
		m->buf[i - 1] = m->buf[off];
		mq_packet(g, m, m->buf + i - 1, rem + 1);
		if (i + rem < sizeof(m->buf))
			m->buf[i + rem] = save;
		off = i + rem;
	}
	memmove(m->buf, m->buf + off, m->len - off);
	m->len -= off;
}

bool
mq_publish(struct lg *g, struct mq *m, const char *data, size_t dl)
{
	uint8_t pkt[256];
	size_t n, tl = sizeof(EVENT_NAME) - 1;

	n = mq_hdr(pkt, g->qos ? 0x32 : 0x30, 2 + tl + (g->qos ? 2 : 0) + dl);
	pkt[n++] = 0;
	pkt[n++] = (uint8_t)tl;
	memcpy(pkt + n, EVENT_NAME, tl);
	n += tl;
	if (g->qos) {
		m->pid = (uint16_t)(m->pid % 65535 + 1);
		pkt[n++] = (uint8_t)(m->pid >> 8);
		pkt[n++] = (uint8_t)m->pid;
	}
	memcpy(pkt + n, data, dl);
	n += dl;
	return send(m->fd, pkt, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* The idle clients' PINGREQs due now (mqtt mode, measuring): ping k
 * goes to idle client k mod N at mq_ping_t0 + k * mq_ping_us / N. Called
 * on the 200 ms tick, so that they go out in batches as the devices' own
 * keep-alive pings do (dev_step on the same tick). */
void
mq_ping_due(struct lg *g)
{
	static const uint8_t req[2] = {0xc0, 0};
	size_t nidle = g->nmq - g->mq_idle0;
	uint64_t now = now_us();

	if (nidle == 0 || now < g->mq_ping_t0)
		return;
	while (g->mq_ping_next < g->mq_ping_max &&
	       g->mq_ping_t0 + g->mq_ping_next * g->mq_ping_us / nidle <= now) {
		struct mq *m = &g->mqs[g->mq_idle0 + g->mq_ping_next % nidle];
		g->mq_ping_next++;
		if (send(m->fd, req, sizeof(req),
			 MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(req))
			g->mq_pings++;
	}
}
