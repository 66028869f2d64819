/*-------------------------------------------------------------------------
 *
 * source_worker.c
 *	  The one loop of every source worker: the decoding worker and the
 *	  Kafka workers are implementations of the interface of source.h, run
 *	  by this loop.
 *
 * Wording: the *source* reads input (WAL, messages) into its views'
 * batches; the *loop* decides when it may read, when the catalog is read,
 * when views are flushed and what is published about the worker.
 *
 * Each iteration:
 *	- serves the signals: a configuration reload (which may change the
 *	  server-wide memory bound), a request to stop;
 *	- reads the catalog when backends changed it (the generation they bump
 *	  at commit), every flowstate.naptime, or when the source asks for it,
 *	  never while a flush is under way;
 *	- lets the source work between batches (backfills, connections);
 *	- reads a slice of its views' state tables into shared memory while
 *	  they load after the worker's start, never while a flush is under way
 *	  or reading is held back for memory (engine/state_load.c);
 *	- applies the memory policy (backpressure.c): evictions, and whether
 *	  reading is held back;
 *	- reads one batch unless held back;
 *	- writes a slice of the flush under way, or starts one every
 *	  flowstate.flush_interval (sooner when side rows pile up or a
 *	  wait_for wants them): a flush never stops reading for longer than a
 *	  slice;
 *	- publishes the worker's progress, resets the per-iteration memory
 *	  context and sleeps if there is nothing to read.
 *
 * The process heap: a batch allocates up to tens of megabytes (its groups,
 * their deltas, the merged states) and frees them when it is merged.
 * glibc's malloc by default hands blocks that large back to the kernel
 * (munmap, or a trim of the heap's top), and the next batch faults each of
 * their pages in again: with a million new groups, page faults took half
 * of the decoder's time, and more on virtual machines where a fault is
 * dear.  The worker keeps what it frees for the next batch instead, and
 * hands it back once it has been idle for a second (heap_keep,
 * heap_release_idle).
 *
 * The worker that flushes a view (the decoder; worker 0 of a stream) is the
 * only one that evicts it; the views' shared state follows the locking
 * protocol of state/state_store.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "fs_catalog/security.h"
#include "guc.h"
#include "workers/registry.h"
#include "workers/source.h"

/* Time a flush writes for between two batches, and while behind. */
#define FLUSH_SLICE_MS		20
#define FLUSH_SLICE_BEHIND_MS	5

/* Time the views' state tables load for between two batches, and while behind. */
#define LOAD_SLICE_MS		20
#define LOAD_SLICE_BEHIND_MS	5

/*
 * The process heap (see the banner): freed memory up to this much stays
 * with the process; blocks up to glibc's largest threshold come from the
 * heap rather than from mmap; the heap is trimmed after this long idle.
 */
#define HEAP_KEEP_BYTES		(256 * 1024 * 1024)
#define HEAP_MMAP_BYTES		(32 * 1024 * 1024)
#define HEAP_IDLE_TRIM_MS	1000

/* The worker of this process. */
static SourceWorker *MySource = NULL;

/* When an iteration last did work; 0 once the heap was trimmed since. */
static TimestampTz heap_used_at = 0;

/*
 * SourceKnownView tells CatalogLoadViews whether this worker runs a view
 * already (same view, same state table).
 */
bool
SourceKnownView(int32 view_id, Oid state_relid)
{
	return MySource != NULL &&
		SourceFindView(MySource->views, view_id, state_relid) != NULL;
}

/* SourceFindView returns the view of views with these ids, or NULL. */
ViewRuntime *
SourceFindView(List *views, int32 view_id, Oid state_relid)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->def->view_id == view_id && vr->def->state_relid == state_relid)
			return vr;
	}
	return NULL;
}

/*
 * SourceReadCatalog reads the catalog through the source; the worker
 * leaves when its source has no view left.
 */
void
SourceReadCatalog(SourceWorker *w)
{
	w->catalog_generation = SlotCatalogGeneration();
	w->catalog_read_at = GetCurrentTimestamp();
	w->catalog_stale = false;
	if (!w->cb->read_catalog(w))
		SourceLeave(w, WORKER_ABSENT);
}

/*
 * SourceFlushStart starts a flush of the worker's views at the source's
 * position; returns true if one is under way then.  Nothing to write
 * still tells the source (its position is durable as it is).
 */
bool
SourceFlushStart(SourceWorker *w)
{
	XLogRecPtr	position = InvalidXLogRecPtr;

	if (w->flush_job != NULL)
		return true;
	if (!w->flushes || !w->cb->flush_position(w, &position))
		return false;
	w->last_flush = GetCurrentTimestamp();
	w->flush_job = FlushStart(w->views, w->histories, position);
	if (w->flush_job != NULL)
		return true;
	pgstat_report_stat(false);
	w->cb->flushed(w, NULL, position);
	return false;
}

/*
 * SourceFlushStep writes a slice of the flush under way, if any (all of it
 * if budget_ms < 0), and ends it once it committed.
 */
void
SourceFlushStep(SourceWorker *w, int budget_ms)
{
	FlushJob   *job = w->flush_job;

	if (job == NULL || !FlushStep(job, budget_ms))
		return;
	w->flush_job = NULL;
	w->progress.last_flush_at = GetCurrentTimestamp();
	/* table statistics, which autovacuum goes by, as a backend reports them */
	pgstat_report_stat(false);
	w->cb->flushed(w, job, FlushPosition(job));
	FlushFree(job);
}

/* SourceFlushNow flushes everything now: the flush under way, then the views as they are. */
void
SourceFlushNow(SourceWorker *w)
{
	SourceFlushStep(w, -1);
	if (SourceFlushStart(w))
		SourceFlushStep(w, -1);
}

/*
 * Whether the views want a flush before the interval: side rows pile up
 * in one, or a flowstate.wait_for() waits for its side rows or for the
 * histories.
 */
static bool
flush_wanted(SourceWorker *w)
{
	ListCell   *lc;

	if (w->histories != NIL &&
		SlotFlushAsked(w->progress.applied_lsn, w->progress.durable_lsn))
		return true;
	foreach(lc, w->views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (list_length(vr->pending) >= INGEST_PENDING_FLUSH_ROWS ||
			(vr->shared != NULL && vr->shared->sides_wanted))
			return true;
	}
	return false;
}

/* SourcePublishProgress publishes the worker's progress and activity. */
void
SourcePublishProgress(SourceWorker *w)
{
	char		activity[FLOWSTATE_TEXT_LEN];

	w->cb->describe(w, activity, sizeof(activity));
	SlotSetProgress(&w->progress);
	SlotSetActivity(activity);
	pgstat_report_activity(STATE_IDLE, activity);
}

/*
 * SourceLeave ends the worker: its views flushed (if it flushes them), the
 * source closed, the exit declared in its slot.
 */
void
SourceLeave(SourceWorker *w, WorkerExit how)
{
	if (w->flushes)
		SourceFlushNow(w);
	if (w->cb->close)
		w->cb->close(w, how);
	SlotDeclareExit(how);
	proc_exit(0);
}

/*
 * Read slices of the state tables of the views that load, for about ms
 * milliseconds in all; true while some are left.
 */
static bool
load_states(SourceWorker *w, int ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	bool		left = false;
	ListCell   *lc;

	foreach(lc, w->views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->load == NULL)
			continue;
		if (GetCurrentTimestamp() >= deadline)
			return true;
		left |= IngestLoadStep(vr, deadline);
	}
	return left;
}

/* Keep freed memory in the process for the next batch (see the banner). */
static void
heap_keep(void)
{
#ifdef __GLIBC__
	if (mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_BYTES) != 1 ||
		mallopt(M_TRIM_THRESHOLD, HEAP_KEEP_BYTES) != 1)
		elog(DEBUG1, "flowstate: malloc settings refused; freed memory goes back to the kernel");
#endif
}

/*
 * After an iteration that did work, note when; after one that did none,
 * hand the freed heap back to the kernel once the worker has been idle for
 * HEAP_IDLE_TRIM_MS.
 */
static void
heap_release_idle(bool idle)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!idle)
		heap_used_at = now;
	else if (heap_used_at != 0 &&
			 TimestampDifferenceExceeds(heap_used_at, now, HEAP_IDLE_TRIM_MS))
	{
#ifdef __GLIBC__
		(void) malloc_trim(0);
#endif
		heap_used_at = 0;
	}
}

/* Run the loop until the worker leaves (see the banner for its steps). */
static void pg_attribute_noreturn()
source_loop(SourceWorker *w)
{
	const SourceCallbacks *cb = w->cb;
	bool		behind = false;

	for (;;)
	{
		bool		ready;
		bool		paused;
		bool		loading = false;
		bool		go_on = false;
		bool		idle;
		bool		round_read = false;
		TimestampTz round_start = 0;

		/* signals: reload (the memory bound may change), stop */
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			SourceSetMemoryBound();
		}
		if (SlotStopRequested())
			SourceLeave(w, WORKER_STOPPED);
		MemoryContextSwitchTo(w->loop_cxt);

		/* the catalog, and with it new views, waits for the flush under way */
		if (w->flush_job == NULL &&
			(w->catalog_stale || SlotCatalogGeneration() != w->catalog_generation ||
			 TimestampDifferenceExceeds(w->catalog_read_at, GetCurrentTimestamp(),
										flowstate_naptime)))
			SourceReadCatalog(w);
		MemoryContextSwitchTo(w->loop_cxt);

		/* the source's work between batches */
		ready = cb->prepare(w);
		MemoryContextSwitchTo(w->loop_cxt);

		/* a slice of the state tables that load */
		if (w->flush_job == NULL && !w->paused)
			loading = load_states(w, behind ? LOAD_SLICE_BEHIND_MS : LOAD_SLICE_MS);
		MemoryContextSwitchTo(w->loop_cxt);

		/* the memory policy: room for the next batch, or hold reading back */
		paused = SourceEnforceMemory(w);
		SourceReportPause(w, paused || w->merge_refused);

		/* one batch */
		if (ready && !paused)
		{
			uint64		seen = w->progress.transactions + w->progress.changes;

			round_start = GetCurrentTimestamp();
			go_on = cb->read_batch(w);
			round_read = w->progress.transactions + w->progress.changes != seen;
		}
		else if (ready && cb->paused)
			cb->paused(w);
		MemoryContextSwitchTo(w->loop_cxt);

		/*
		 * A slice of the flush under way, or a new flush when it is time;
		 * shorter slices while the source is behind, so that reading
		 * catches up first (the flush goes on, and writes each group once
		 * for all the changes it missed meanwhile).
		 */
		if (w->flushes)
		{
			int			slice = go_on ? FLUSH_SLICE_BEHIND_MS : FLUSH_SLICE_MS;

			if (w->flush_job != NULL)
				SourceFlushStep(w, slice);
			else if ((TimestampDifferenceExceeds(w->last_flush, GetCurrentTimestamp(),
												 flowstate_flush_interval) ||
					  flush_wanted(w)) &&
					 SourceFlushStart(w))
				SourceFlushStep(w, slice);
		}

		SourcePublishProgress(w);

		/* the iteration's memory goes */
		MemoryContextSwitchTo(w->worker_cxt);
		MemoryContextReset(w->loop_cxt);

		/*
		 * Nothing to read at once, no flush to go on with: sleep.  After a
		 * round that read something, first the rest of the shortest round,
		 * not woken by the latch: a writer setting it meanwhile sends no
		 * signal, and what it wrote is read with what comes until then.
		 */
		behind = go_on;
		idle = !go_on && !loading && w->flush_job == NULL;
		heap_release_idle(idle && !round_read);
		if (idle)
		{
			long		rest = round_read && cb->min_round_ms > 0 ?
				cb->min_round_ms - (long) ((GetCurrentTimestamp() - round_start) / 1000) : 0;

			if (rest > 0 && rest <= cb->min_round_ms)
				(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, rest,
								 PG_WAIT_EXTENSION);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 cb->idle_ms, PG_WAIT_EXTENSION);
		}
		ResetLatch(MyLatch);
	}
}

/*
 * SourceWorkerRun is the body of every source worker: main_arg is its slot
 * number (bgw_extra holds the slot's generation), cb its source, private
 * the source's state.  It never returns.
 */
void
SourceWorkerRun(Datum main_arg, const SourceCallbacks *cb, void *private)
{
	uint64		generation;
	MemoryContext worker_cxt;
	SourceWorker *w;

	/* the bgworker skeleton: signals, then the slot */
	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	heap_keep();

	/* a long-lived context and one reset at each iteration */
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate source worker",
									   ALLOCSET_DEFAULT_SIZES);
	w = MemoryContextAllocZero(worker_cxt, sizeof(SourceWorker));
	w->cb = cb;
	w->private = private;
	w->worker_cxt = worker_cxt;
	w->loop_cxt = AllocSetContextCreate(worker_cxt, "flowstate source loop",
										ALLOCSET_DEFAULT_SIZES);
	w->batch_groups = PG_UINT32_MAX;
	w->catalog_stale = true;
	MySource = w;

	w->slot = SlotAttach(DatumGetInt32(main_arg), generation);
	if (SlotStopRequested())
	{
		SlotDeclareExit(WORKER_STOPPED);
		proc_exit(0);
	}
	BackgroundWorkerInitializeConnectionByOid(w->slot->dboid, InvalidOid, 0);
	SecurityWorkerInit();
	SourceSetMemoryBound();
	w->last_flush = GetCurrentTimestamp();

	/* the source: set up, with a first look at the catalog */
	MemoryContextSwitchTo(worker_cxt);
	cb->open(w);
	if (w->catalog_stale)
		SourceReadCatalog(w);
	SlotSetConfirmed();

	source_loop(w);
}
