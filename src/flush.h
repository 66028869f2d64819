/*-------------------------------------------------------------------------
 *
 * flush.h
 *	  Makes the state of a source's continuous views durable, together with
 *	  the source position.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_FLUSH_H
#define FLOWSTATE_FLUSH_H

#include "access/xlogdefs.h"
#include "nodes/pg_list.h"

extern bool FlushViews(List *views, XLogRecPtr position);

#endif							/* FLOWSTATE_FLUSH_H */
