/*-------------------------------------------------------------------------
 *
 * source.h
 *	  The interface between a source of continuous views (table changes
 *	  through logical decoding, a Kafka stream, ...) and the one worker loop
 *	  that runs every source (source_worker.c) under one memory policy
 *	  (backpressure.c).
 *
 * A source fills a SourceCallbacks, as an output plugin fills
 * OutputPluginCallbacks, and its worker's entry point calls
 * SourceWorkerRun.  The loop owns the signals, the memory contexts, the
 * catalog cadence, the flush cadence (flushes written in slices between
 * batches), the memory policy and progress reporting; the source reads
 * batches and knows its position.  See workers/README.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_SOURCE_H
#define FLOWSTATE_SOURCE_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

#include "engine/flush.h"
#include "engine/ingest.h"
#include "workers/registry.h"

typedef struct SourceWorker SourceWorker;

typedef struct SourceCallbacks
{
	/* what the source does, in messages: "decoding", "consuming" */
	const char *verb;
	/* how long the loop sleeps when there is nothing to read */
	int			idle_ms;

	/*
	 * The shortest time from the start of one round that read to the next:
	 * input that comes sooner (a writer's commit setting the latch) waits
	 * for the rest of it, so that a stream of small transactions is read
	 * several at a time rather than one wake-up each.  0: none.
	 */
	int			min_round_ms;

	/*
	 * Set the source up, connected to the database and before the first
	 * look at the catalog: slot, origin, consumer settings.
	 */
	void		(*open) (SourceWorker *w);

	/*
	 * Compare the catalog with the running views: start new ones, stop
	 * dropped ones, keeping w->views up to date.  Never called while a
	 * flush is under way.  Returns false when the source has no view left
	 * (the worker leaves).
	 */
	bool		(*read_catalog) (SourceWorker *w);

	/*
	 * Work between two batches: backfills and rebuilds (never while a flush
	 * is under way: check w->flush_job), connections, assignments.  Returns
	 * false when the source cannot read yet.
	 */
	bool		(*prepare) (SourceWorker *w);

	/*
	 * Read one batch, apply it to the views and merge it into shared
	 * memory, keeping to w->batch_groups new groups per view.  Returns true
	 * when the loop should go on at once (more is there, or the source
	 * waited for input itself), false when it should sleep.
	 */
	bool		(*read_batch) (SourceWorker *w);

	/*
	 * Called instead of read_batch while reading is held back for memory:
	 * what the source does meanwhile (keep connections alive).  May be
	 * NULL.
	 */
	void		(*paused) (SourceWorker *w);

	/*
	 * The position a flush starting now makes durable (InvalidXLogRecPtr if
	 * the views carry their own offsets); false if none may start now.
	 */
	bool		(*flush_position) (SourceWorker *w, XLogRecPtr *position);

	/*
	 * A flush committed (job, then freed by the loop), or there was nothing
	 * to write at position (job NULL).
	 */
	void		(*flushed) (SourceWorker *w, FlushJob *job, XLogRecPtr position);

	/*
	 * Describe the worker's work for pg_stat_activity and flowstate.workers,
	 * and bring w->progress up to date before it is published.
	 */
	void		(*describe) (SourceWorker *w, char *buf, size_t len);

	/*
	 * Release the source as the worker leaves, after its last flush; how
	 * says why it leaves.
	 */
	void		(*close) (SourceWorker *w, WorkerExit how);
} SourceCallbacks;

struct SourceWorker
{
	const SourceCallbacks *cb;
	void	   *private;		/* the source's own state */
	WorkerSlot *slot;

	MemoryContext worker_cxt;	/* long-lived: the source's state, its views */
	MemoryContext loop_cxt;		/* reset at the end of every iteration */

	List	   *views;			/* ViewRuntime, kept by read_catalog */
	List	   *histories;		/* HistoryRuntime (the decoder), kept likewise */
	bool		flushes;		/* this worker flushes and evicts its views
								 * (the decoder; worker 0 of a stream) */
	bool		catalog_stale;	/* the source wants the catalog read again */
	uint64		catalog_generation;
	TimestampTz catalog_read_at;

	FlushJob   *flush_job;		/* the flush being written, or NULL */
	TimestampTz last_flush;

	/* the memory policy (backpressure.c) */
	uint32		batch_groups;	/* new groups a batch may bring per view */
	bool		merge_refused;	/* shared memory could not take a batch */
	bool		paused;			/* reading is held back for memory */
	TimestampTz paused_since;

	SourceProgress progress;
};

/* source_worker.c */
extern void SourceWorkerRun(Datum main_arg, const SourceCallbacks *cb, void *private) pg_attribute_noreturn();
extern void SourceReadCatalog(SourceWorker *w);
extern void SourceLeave(SourceWorker *w, WorkerExit how) pg_attribute_noreturn();
extern bool SourceFlushStart(SourceWorker *w);
extern void SourceFlushStep(SourceWorker *w, int budget_ms);
extern void SourceFlushNow(SourceWorker *w);
extern bool SourceKnownView(int32 view_id, Oid state_relid);
extern ViewRuntime *SourceFindView(List *views, int32 view_id, Oid state_relid);
extern void SourcePublishProgress(SourceWorker *w);

/* backpressure.c */
extern int64 SourceViewBudget(ViewRuntime *vr);
extern void SourceSetMemoryBound(void);
extern bool SourceEnforceMemory(SourceWorker *w);
extern void SourceReportPause(SourceWorker *w, bool paused);

#endif							/* FLOWSTATE_SOURCE_H */
