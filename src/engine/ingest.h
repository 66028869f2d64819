/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  Rows into continuous views: evaluation of a view's query on each row,
 *	  pre-aggregation per micro-batch, and the atomic merge of a batch into
 *	  shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_INGEST_H
#define FLOWSTATE_INGEST_H

#include "access/xlogdefs.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/dsa.h"

#include "aggregates/aggregate.h"
#include "engine/snapshot.h"
#include "state/group.h"
#include "query/query.h"
#include "state/state_store.h"
#include "state/state_table.h"

/* A group touched by the current batch. */
typedef struct LocalGroup
{
	uint32		hash;
	Datum	   *values;			/* key, detoasted, in the batch context */
	bool	   *isnull;
	char	   *delta;			/* what the batch adds and removes */
	char	   *base;			/* replaces the stored state (recompute,
								 * TRUNCATE), or NULL */
	char	   *merged;			/* base (or stored state) + delta */
	dsa_pointer entry;			/* its group in shared memory, if any */
	bool		resolved;		/* entry is known (or the group is new) */
	int			skip_snap;		/* recompute snapshot whose transactions it
								 * skips, or -1 */
	int64		loaded_gid;		/* base came from this row of the state table */
	ItemPointerData loaded_tid;
	char	   *stored;			/* its state in shared memory when the batch
								 * first touched it, for the overflow check
								 * of float sums; NULL: none */
	bool		stored_read;	/* stored was looked up */
	bool		loaded_overflowed;	/* the row loaded_gid was out of range */
	bool		retracted;		/* delta removes rows */
	bool		dirty;			/* recomputed whatever its delta: a row of
								 * the dimension it joins changed */
	double	   *magnitude;		/* per aggregate, largest |input| of a float
								 * sum (views with float sums) */
	bool		unseen_retracted;	/* unseen removes rows */
	char	   *unseen;			/* what the transactions the settle's latest
								 * snapshot did not see add and remove, or
								 * NULL */
	struct LocalGroup *next;
} LocalGroup;

/* A side output written with the next flush. */
typedef struct PendingRow
{
	XLogRecPtr	lsn;
	bool		at_message;		/* from a Kafka message: */
	int32		partition;		/* its partition */
	int64		offset;			/* and offset */
	char	   *payload;
	char	   *error;			/* dead letter: message */
	char		sqlstate[6];
	bool		late;			/* late event rather than dead letter */
	bool		deleted;		/* late event: the row left rather than came */
	TimestampTz event_time;
	TimestampTz watermark;
} PendingRow;

/* the join of a view to its dimension (lookup.c) */
typedef struct Lookup Lookup;

typedef struct ViewRuntime
{
	ViewDef    *def;
	SharedView *shared;
	GroupKeys  *gk;
	AggRuntime *rt;

	/* evaluation of the defining query on a source row */
	ExprContext *econtext;
	ExprState  *qual;
	ProjectionInfo *proj;
	bool		guarded;		/* calls functions other than internal ones:
								 * each row is evaluated in a subtransaction,
								 * so that an error in them is cleaned up */
	TupleTableSlot *result;
	char	   *compile_error;	/* the defining query could not be compiled */
	bool		last_failed;	/* the last evaluation raised an error */
	struct pg_tz *zone;			/* def->time_zone, NULL: the worker's */
	Lookup	   *lookup;			/* its join, NULL if none */
	TupleDesc	source_desc;	/* over a table with a join: its rows' */
	void	   *dimension_changes;	/* over a table: the dimension's keys
									 * changed during the settle
									 * (dimension.c) */
	char		compile_sqlstate[6];
	Bitmapset  *payload_atts;	/* source columns the expressions read */
	bool		payload_all;	/* ... all of them (a whole-row reference) */
	int			key_col[FLOWSTATE_MAX_KEYS];
	int			arg_col[FLOWSTATE_MAX_AGGS];	/* -1: count(*) */
	int			filter_col[FLOWSTATE_MAX_AGGS];	/* -1: no FILTER */
	int			ts_col;			/* event time of the window, -1 if none */
	bool		float_sums;		/* has float sums, which can overflow */
	bool		can_overflow;	/* groups can fall in error (AggCanOverflow) */
	bool		refuse_overflow;	/* refuses rows that would overflow them
									 * (streams: rows never leave) */
	int			sum_floats[FLOWSTATE_MAX_AGGS];	/* float sums and averages */
	int			nsum_floats;

	/* the current batch */
	MemoryContext batch_cxt;
	LocalGroup **table;
	uint32		table_size;
	uint32		ngroups;
	LocalGroup *first;
	LocalGroup *last;
	bool		truncated;
	int64		batch_rows;
	int64		batch_late;
	int64		batch_failed;

	/* a backfill whose snapshot decides which transactions to skip */
	SyncSnapshot *backfill_snap;
	bool		skip_txn;
	bool		keep_final;		/* a rebuild keeps the final windows: rows of
								 * windows starting up to final_cutoff are
								 * not read again */
	int64		final_cutoff;
	bool		final_walked;	/* evict_final (flush.c) walked the groups */
	int64		final_cutoff_walked;	/* ... for windows up to this start */
	bool		final_left;		/* ... and left some, flushed too recently */
	TimestampTz final_walked_at;	/* ... when */
	bool		expired_once;	/* expire_windows (flush.c) deleted windows */
	int64		expired_cutoff; /* ... up to this start */

	/* event time */
	bool		has_watermark;
	int64		max_ts;			/* largest event time seen */
	bool		has_durable_max_ts; /* streams: the event time lateness is
									 * decided with, as of the last committed
									 * flush (of any worker of the stream) */
	int64		durable_max_ts;
	bool		persisted_watermark;	/* flowstate.view has max_event_time */
	bool		has_final_ts;	/* streams: the event time up to which every
								 * worker judges (flowstate.view's
								 * final_event_time, as of the last flush) */
	int64		final_ts;
	TimestampTz evicted_at;		/* last attempt to evict groups */
	int64		persisted_max_ts;	/* its value there */

	/* recompute queries, one per pattern of NULL keys */
	List	   *recompute_plans;

	/* durable state */
	struct StateLoad *load;		/* the state table's rows not read yet into
								 * shared memory (state_load.c), or NULL */
	int64		next_gid;
	bool		dropped;		/* its state table is gone, or holds a state
								 * that cannot be read (IngestBreakView):
								 * it is fed no more */
	bool		rebuild;		/* its source stopped logging old rows */

	/* dead letters and late events not flushed yet */
	MemoryContext pending_cxt;
	List	   *pending;
	bool		sides_in_flight;	/* written by a flush not committed yet */

	/* Kafka: the message being applied, and how far the batch went */
	bool		at_message;
	int32		msg_partition;
	int64		msg_offset;
	int64	   *next_offsets;	/* per partition, -1: not in the batch */
	int64	   *part_max_ts;	/* per partition, the batch's largest event
								 * time, PG_INT64_MIN: none */
	int			noffsets;

	TimestampTz last_merge_at;
} ViewRuntime;

/*
 * Side rows (dead letters, late events) of a view past which its source
 * ends the batch and flushes, rather than wait for the flush interval.
 */
#define INGEST_PENDING_FLUSH_ROWS 10000

/* A source able to decode up to a position, for the settle loop. */
typedef XLogRecPtr (*IngestCatchUp) (XLogRecPtr lsn);

/* lookup.c */
extern Node *LookupInnerVars(ViewDef *def, Node *node);
extern Lookup *LookupCreate(ViewRuntime *vr);
extern void LookupBegin(List *views);
extern void LookupEnd(List *views);
extern bool LookupRow(ViewRuntime *vr);
#define LOOKUP_FORCE_NONE		0
#define LOOKUP_FORCE_ROW		1
#define LOOKUP_FORCE_NONE_ROW	2
extern void LookupForce(ViewRuntime *vr, int how, HeapTuple tuple);
extern bool LookupReadFailed(ViewRuntime *vr);
extern void LookupUseSnapshot(ViewRuntime *vr, Snapshot snapshot);
extern void LookupDecodingSnapshot(List *views, Snapshot snapshot);

/* dimension.c */
extern void DimensionChange(ViewRuntime *vr, TupleTableSlot *oldrow, TupleTableSlot *newrow);
extern void DimensionFactRow(ViewRuntime *vr, TupleTableSlot *row);
extern int	DimensionPending(List *views);
extern void DimensionExpand(List *views, SyncSnapshot *snap);
extern void DimensionSettled(List *views);
extern void DimensionTxnBegin(List *views);
extern void IngestMarkStale(ViewRuntime *vr, const Datum *keys, const bool *keynulls);

/* projection.c */
extern void ProjectionCompile(ViewRuntime *vr);
extern bool ProjectionAdvance(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn,
							  bool record, char **blocks, int nblocks);
extern bool ProjectionEvaluate(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn,
							   bool record);
extern bool ProjectionIsLate(ViewRuntime *vr, TupleTableSlot *slot, int sign, XLogRecPtr lsn);
extern void ProjectionRefuse(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn,
							 int sqlerrcode, const char *message);

/* ingest.c: rows into batches */
extern ViewRuntime *IngestViewCreate(ViewDef *def, MemoryContext cxt);
extern void IngestViewDestroy(ViewRuntime *vr);
extern void IngestEnsureScalarGroup(ViewRuntime *vr);
extern void IngestTxnBegin(List *views, TransactionId xid, XLogRecPtr commit_lsn);
extern void IngestRow(ViewRuntime *vr, TupleTableSlot *slot, int sign, XLogRecPtr lsn);
extern void IngestBackfillRow(ViewRuntime *vr, TupleTableSlot *slot);
extern void IngestTruncate(ViewRuntime *vr);
extern void IngestRequestRebuild(ViewRuntime *vr, const char *why);
extern bool IngestEvaluateKey(ViewRuntime *vr, TupleTableSlot *slot, Datum *keys, bool *keynulls);
extern void IngestAccumulate(ViewRuntime *vr, TupleTableSlot *slot, char *block);
extern bool IngestAccumulateRow(ViewRuntime *vr, TupleTableSlot *slot, char *block, int sign,
								double *magnitude);
extern void IngestMergeDelta(ViewRuntime *vr, const Datum *keys, const bool *keynulls,
							 const char *delta, bool retracted, const double *magnitude,
							 int64 nrows);
extern void IngestNoteEventTime(ViewRuntime *vr, int64 ts);
extern void IngestNoteOffset(ViewRuntime *vr, int32 partition, int64 next);
extern void IngestRefreshDurable(ViewRuntime *vr, SharedView *sv, int worker, bool batch_empty);
extern uint32 IngestBatchGroups(ViewRuntime *vr, int64 limit);
extern void IngestBatchReset(ViewRuntime *vr);
extern int	IngestSnapshotAdd(SyncSnapshot *snap);
extern bool IngestUnseenValid(void);
extern void IngestUnseenChange(void);
extern void IngestSnapshotsEnd(void);

/* merge.c: batches into shared memory */
extern dsa_pointer IngestAddLoaded(ViewRuntime *vr, uint32 hash, StateRow *row);
extern void IngestBreakView(ViewRuntime *vr, const char *problem);
extern bool IngestResolve(ViewRuntime *vr);
extern void IngestLoadGroups(ViewRuntime *vr);
extern int	IngestComputeMerged(ViewRuntime *vr);
extern LocalGroup **IngestStale(ViewRuntime *vr, int *n);
extern bool IngestMerge(ViewRuntime *vr, XLogRecPtr position);
extern bool IngestMergeInserts(ViewRuntime *vr, XLogRecPtr position);
extern void IngestUnresolve(ViewRuntime *vr);
extern bool IngestApplyShared(ViewRuntime *vr, SharedView *sv);

/* state_load.c: the state table into shared memory, in the background */
extern void IngestLoadState(ViewRuntime *vr);
extern bool IngestLoadStep(ViewRuntime *vr, TimestampTz deadline);
extern void IngestLoadCancel(ViewRuntime *vr);

/* settle.c: batches made exact, then merged */
extern XLogRecPtr IngestSettle(List *views, XLogRecPtr position, IngestCatchUp catch_up);

#endif							/* FLOWSTATE_INGEST_H */
