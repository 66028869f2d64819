/*-------------------------------------------------------------------------
 *
 * decoding_worker.h
 *	  The state of the decoding worker, shared by its files: the worker
 *	  itself (decoder.c: slot, WAL, views, backfills) and the sink of the
 *	  changes it decodes (change_sink.c).  Private to sources/decoding.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_DECODING_WORKER_H
#define FLOWSTATE_DECODING_WORKER_H

#include "postgres.h"

#include "access/tupconvert.h"
#include "executor/tuptable.h"
#include "replication/logical.h"
#include "utils/hsearch.h"
#include "utils/resowner.h"

#include "sources/decoding/output_plugin.h"
#include "workers/source.h"

/* A table feeding views, with a slot of its current row type. */
typedef struct SourceRel
{
	Oid			relid;
	List	   *views;			/* ViewRuntime */
	List	   *histories;		/* HistoryRuntime */
	List	   *joined_by;		/* ViewRuntime over other tables that join it */
	TupleTableSlot *slot;
	TupleTableSlot *old_slot;	/* histories: the row before an UPDATE */
	int			natts;
} SourceRel;

/* A partitioned table above a leaf that feeds views, as the leaf sees it. */
typedef struct LeafTarget
{
	SourceRel  *src;
	TupleConversionMap *map;	/* the leaf's row type to the source's, or
								 * NULL if they are the same */
	TupleTableSlot *slot;		/* of the source's row type */
} LeafTarget;

/*
 * A partition whose changes feed the views over the partitioned tables
 * above it, found by its relid as of the change decoded.
 */
typedef struct LeafRel
{
	Oid			relid;
	List	   *targets;		/* LeafTarget; NIL if none feeds a view */
	TupleTableSlot *slot;		/* of the leaf's row type */
} LeafRel;

typedef struct DecodingWorker
{
	SourceWorker *worker;		/* the loop running it; its views */
	char		slot_name[NAMEDATALEN];
	RepOriginId origin;
	LogicalDecodingContext *ctx;
	ResourceOwner resowner;
	DecoderSink sink;

	MemoryContext views_cxt;	/* the views and everything about them */
	HTAB	   *sources;		/* relid -> SourceRel */
	bool		joins;			/* a view joins a table (index_sources) */
	MemoryContext leaves_cxt;	/* the partitions below sources: */
	HTAB	   *leaves;			/* relid -> LeafRel, rebuilt after any relcache
								 * invalidation (an ATTACH, DETACH, column
								 * change) */
	bool		leaves_stale;

	XLogRecPtr	position;
	XLogRecPtr	durable;
	bool		blocked;		/* decoding reached a record not flushed yet */

	/* the latest commit of a transaction streamed while in progress */
	XLogRecPtr	streamed_commit_lsn;
	XLogRecPtr	snapshot_logged_for;	/* ... for which a running-transactions
										 * record was logged once durable */
	XLogRecPtr	snapshot_logged_at; /* the end of the record logged last */

	/* the transaction being decoded */
	bool		txn_changed;
	uint64		batch_changes;
} DecodingWorker;

extern DecodingWorker *MyDecoder;

/* change_sink.c */
extern void DecodingSinkInit(DecoderSink *sink);
extern bool DecodingRebuildPending(void);

#endif							/* FLOWSTATE_DECODING_WORKER_H */
