/* SPDX-License-Identifier: MIT */
/*
 * Priorities of the loop's events (event_base_priority_init in
 * daemon.c). Everything defaults to EVPRIO_NORMAL; a reconnect storm's
 * work (accepts, handshake I/O, the crypto pool's completions) runs at
 * EVPRIO_BULK, so that libevent runs it only when nothing of higher
 * priority is ready, and at most EVPRIO_BULK_BATCH of its callbacks
 * before polling again: a connected device's frame waits behind at most
 * one such batch, not behind thousands of new connections.
 *
 * A base without priorities (unit tests) rejects event_priority_set;
 * the callers ignore that and everything runs as one priority.
 */
#ifndef CINDER_EVPRIO_H
#define CINDER_EVPRIO_H

#define EVPRIO_COUNT 3
#define EVPRIO_NORMAL 1 /* libevent's default: EVPRIO_COUNT / 2 */
#define EVPRIO_BULK 2
#define EVPRIO_BULK_BATCH 32

#endif
