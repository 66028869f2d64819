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
#include "postgres_ext.h"

typedef struct FlushJob FlushJob;

extern FlushJob *FlushStart(List *views, List *histories, XLogRecPtr position);
extern bool FlushStep(FlushJob *job, int budget_ms);
extern XLogRecPtr FlushPosition(FlushJob *job);
extern void FlushFree(FlushJob *job);
extern int	FlushOffsets(FlushJob *job, int64 **least);
extern void FlushWritePending(List *views, Oid source, List *source_rows);
extern int	FlushReadOffsets(int32 view_id, int64 **offsets, int64 **max_ts);

struct ViewRuntime;
extern int64 FlushEvict(struct ViewRuntime *vr, int64 target);
extern void FlushEvictFinal(struct ViewRuntime *vr);

#endif							/* FLOWSTATE_FLUSH_H */
