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

typedef struct FlushJob FlushJob;

extern FlushJob *FlushStart(List *views, XLogRecPtr position);
extern bool FlushStep(FlushJob *job, int budget_ms);
extern XLogRecPtr FlushPosition(FlushJob *job);
extern void FlushFree(FlushJob *job);

#endif							/* FLOWSTATE_FLUSH_H */
