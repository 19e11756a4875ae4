/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the two libpq users of the store (store_pg.c, the
 * asynchronous store, and store_sync.c, the blocking CLI helpers). Not for
 * other modules.
 */
#ifndef CINDER_STORE_INT_H
#define CINDER_STORE_INT_H

/**
 * A libpq message on one log line: runs of newlines, tabs and carriage
 * returns become one space, trailing blanks go.
 * @param m the message, or NULL
 * @return a new string ("unknown error" for NULL or ""); caller frees
 */
char *store_msg_oneline(const char *m);

#endif
