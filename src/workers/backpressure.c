/*-------------------------------------------------------------------------
 *
 * backpressure.c
 *	  The memory policy of every source worker: views within their own
 *	  memory_limit, the views of the whole server within
 *	  flowstate.memory_limit, and reading held back when neither can be
 *	  kept by evicting.
 *
 * Wording: a view's *limit* is its memory_limit (default
 * flowstate.memory_limit); the *bound* is flowstate.memory_limit, the
 * shared memory the groups of all views of the server may hold in all.
 *
 * The policy, applied by the worker loop before each batch:
 *	- a view past three quarters of its limit: its flushed groups leave,
 *	  least recently changed first, down to half of it, after a flush if
 *	  need be (only the worker that flushes a view evicts it);
 *	- the views of the server past three quarters of the bound: each
 *	  worker brings its own views down in proportion, so that together they
 *	  hold half of the bound;
 *	- a view over its limit, the server's views over the bound (by more
 *	  than an eighth of it, at most 1 MB: a view whose limit is the bound
 *	  says it is over its limit first), or a batch that shared memory
 *	  refused: the worker stops reading (backpressure) until memory is
 *	  free.  Flushed groups leave
 *	  only once no snapshot predates their flush, so a long snapshot can
 *	  hold reading back; after a second it is said, in flowstate.sources
 *	  ('paused for memory', last_error), in flowstate.views and once in the
 *	  log.  Nothing read is lost or read twice: the input waits at its
 *	  source.
 *	- a batch brings at most a quarter of the view's budget in new groups
 *	  (SourceViewBudget), and no more than a share of the room left below
 *	  the pause, so that the batches before a pause keep the server near
 *	  its bound and well within the cap of the DSA area.
 * The DSA area itself is capped a little above the bound
 * (SourceSetMemoryBound): a batch that does not fit changes nothing.
 *
 * Each view's status and pause flag are written under its LWLock, as
 * state/state_store.c says; the server's total is read through the dshash
 * of views (StoreTotalBytes).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/dsa.h"
#include "utils/timestamp.h"

#include "engine/flush.h"
#include "engine/ingest.h"
#include "fs_catalog/catalog.h"
#include "guc.h"
#include "state/state_store.h"
#include "workers/registry.h"
#include "workers/source.h"

/* Time between two attempts to bring a view back within its memory. */
#define EVICT_RETRY_MS		100

/* A pause for memory longer than this is reported. */
#define PAUSE_REPORT_MS		1000

/* Room the DSA area has above the bound, for the batch before a pause. */
#define BOUND_SLACK			(4 * 1024 * 1024)

/* How far the server's views may pass the bound before reading stops. */
#define PAUSE_SLACK(bound)	Min((bound) / 8, BOUND_SLACK / 4)

/* The server-wide bound, in bytes. */
static int64
memory_bound(void)
{
	return (int64) flowstate_memory_limit * 1024;
}

/*
 * SourceSetMemoryBound caps the shared memory of all views at the bound
 * (plus BOUND_SLACK); every source worker does so at start and reload.
 */
void
SourceSetMemoryBound(void)
{
	dsa_set_size_limit(StoreArea(), (size_t) memory_bound() + BOUND_SLACK);
}

/*
 * SourceViewBudget is the memory a view's batches are sized by: its limit,
 * but no more than half the bound.
 */
int64
SourceViewBudget(ViewRuntime *vr)
{
	return Min(CatalogMemoryLimit(vr->def), memory_bound() / 2);
}

/* Mark a view over its limit or not, and held back or not. */
static void
set_view_state(SharedView *sv, bool full, bool paused)
{
	ViewStatus	status = sv->status;

	if ((status != VIEW_RUNNING && status != VIEW_FULL) ||
		((status == VIEW_FULL) == full && sv->paused == paused))
		return;
	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	sv->status = full ? VIEW_FULL : VIEW_RUNNING;
	sv->paused = paused;
	LWLockRelease(&sv->lock);
}

/* Mark the views this worker flushes held back or not, as it is. */
static void
mark_views(SourceWorker *w)
{
	ListCell   *lc;

	if (!w->flushes)
		return;
	foreach(lc, w->views)
	{
		SharedView *sv = ((ViewRuntime *) lfirst(lc))->shared;

		if (sv != NULL)
			set_view_state(sv, sv->status == VIEW_FULL, w->paused);
	}
}

/*
 * Bring a view this worker flushes back within its memory (see the
 * banner); squeeze_to is its share of the bound when the server's views
 * are past three quarters of it (else -1).  Returns its bytes then.
 */
static int64
evict_view(SourceWorker *w, ViewRuntime *vr, int64 squeeze_to, bool *flushed)
{
	int64		limit = CatalogMemoryLimit(vr->def);
	int64		bytes = vr->shared->bytes;
	int64		target = limit / 2;
	int64		enough = limit / 4 * 3;
	bool		due = TimestampDifferenceExceeds(vr->evicted_at, GetCurrentTimestamp(),
												 EVICT_RETRY_MS);

	if (squeeze_to >= 0 && squeeze_to < target)
		target = enough = squeeze_to;
	if (w->merge_refused)
		target = enough = 0;	/* a batch waits: make all the room there is */
	if (!(bytes > limit || w->merge_refused || (bytes > enough && due)))
		return bytes;

	vr->evicted_at = GetCurrentTimestamp();
	SourceFlushStep(w, -1);		/* the flush under way, if any */
	bytes = FlushEvict(vr, target);
	if (bytes > enough && !*flushed)
	{
		/* groups changed since the last flush: flush them, then evict */
		SourceFlushNow(w);
		*flushed = true;
		bytes = FlushEvict(vr, target);
	}
	return bytes;
}

/*
 * SourceEnforceMemory applies the memory policy to the worker's views and
 * sets the batch size; returns true when reading must be held back.
 */
bool
SourceEnforceMemory(SourceWorker *w)
{
	int64		bound = memory_bound();
	int64		total = StoreTotalBytes();
	int64		squeeze_to = -1;
	bool		over = false;
	bool		flushed = false;
	uint32		batch_groups = PG_UINT32_MAX;
	/* the room left below the pause, shared with the other writers */
	int64		room = Max(bound + PAUSE_SLACK(bound) - total, 0) / 4 /
		Max(list_length(w->views), 1);
	ListCell   *lc;

	/* each view: its batch size, then room for it (or whether it is full) */
	foreach(lc, w->views)
	{
		ViewRuntime *vr = lfirst(lc);
		int64		limit = CatalogMemoryLimit(vr->def);
		SharedView *sv;
		int64		bytes;

		/* a quarter of its budget, within its share of the room left */
		batch_groups = Min(batch_groups, IngestBatchGroups(vr, SourceViewBudget(vr)));
		batch_groups = Min(batch_groups, IngestBatchGroups(vr, room * 4));
		if (vr->dropped)
			continue;
		if (!w->flushes)
		{
			/* another worker flushes it: only whether it is full */
			StoreKey	key = {MyDatabaseId, vr->def->state_relid};

			sv = StoreFindView(key);
			if (sv != NULL)
			{
				over |= sv->status == VIEW_FULL;
				StoreReleaseView(sv);
			}
			continue;
		}
		/* this worker flushes it: evict, its share of the bound too */
		sv = vr->shared;
		if (sv == NULL || (sv->status != VIEW_RUNNING && sv->status != VIEW_FULL))
			continue;
		/* final windows that stayed, flushed too recently: again, between flushes */
		if (vr->final_left && w->flush_job == NULL)
			FlushEvictFinal(vr);
		if (total > bound / 4 * 3 && total > 0)
			squeeze_to = (int64) ((double) sv->bytes * (bound / 2) / total);
		else
			squeeze_to = -1;
		bytes = evict_view(w, vr, squeeze_to, &flushed);
		over |= bytes > limit;
		set_view_state(sv, bytes > limit, w->paused);
	}
	w->batch_groups = batch_groups;

	/* the server's views: within the bound, give or take a batch */
	if (flushed || total > bound / 4 * 3)
		total = StoreTotalBytes();
	over |= total > bound + PAUSE_SLACK(bound);
	return over;
}

/*
 * SourceReportPause notes whether reading is held back for memory: briefly,
 * as snapshots older than the last flush end; when it lasts, it is said in
 * flowstate.sources (state, last_error), flowstate.views and once in the
 * log.
 */
void
SourceReportPause(SourceWorker *w, bool paused)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!paused)
	{
		w->paused_since = 0;
		if (!w->paused)
			return;
		ereport(LOG,
				(errmsg("flowstate %s resumed: continuous views are back within their memory",
						w->cb->verb)));
		w->paused = w->progress.paused = false;
		mark_views(w);
		return;
	}
	if (w->paused_since == 0)
		w->paused_since = now;
	if (!w->paused && TimestampDifferenceExceeds(w->paused_since, now, PAUSE_REPORT_MS))
	{
		char		message[FLOWSTATE_TEXT_LEN];

		w->paused = w->progress.paused = true;
		mark_views(w);
		snprintf(message, sizeof(message),
				 "%s paused: continuous views hold %lld kB of shared memory (flowstate.memory_limit: %d kB), or more than their memory_limit, and keep flushed groups that snapshots older than the flush may read",
				 w->cb->verb, (long long) (StoreTotalBytes() / 1024), flowstate_memory_limit);
		SlotSetError(message);
		ereport(WARNING,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("flowstate %s", message),
				 errhint("End long-running transactions, or raise flowstate.memory_limit or the memory_limit of the views.")));
	}
}
