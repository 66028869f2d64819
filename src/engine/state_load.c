/*-------------------------------------------------------------------------
 *
 * state_load.c
 *	  A view's state table into shared memory after its worker starts, in
 *	  the background.
 *
 * A worker that starts a view serves new changes before the view's groups
 * are in shared memory: a million groups take seconds to load.
 *
 *	1. At start (IngestLoadState, in the worker's start transaction) one
 *	   scan counts the state table's rows, their largest row id and, for a
 *	   view whose groups can fall out of range, those that are: the view's
 *	   groups, its overflowed count (a read fails while it is not zero)
 *	   and the next row id are exact before the first batch, as the batches
 *	   change them from there.  No group is in shared memory yet, and the
 *	   view is not complete: a batch reads the groups it lacks from the
 *	   state table (IngestResolve, IngestLoadGroups) and keeps them.
 *	2. Between batches, when no flush is under way, the worker's loop
 *	   (workers/source_worker.c) reads the table a few blocks at a time
 *	   (IngestLoadStep), each slice under a snapshot of its own: with no
 *	   flush of this worker open, each row it sees is its group's durable
 *	   state, which it adds to shared memory unless the group is there
 *	   already (newer: read by a batch, or new).  The worker that loads a
 *	   view is the only one that flushes it (the decoder; worker 0 of a
 *	   stream).  It stops adding once the view holds half its memory limit
 *	   (as a batch would have to evict) or groups leave shared memory for
 *	   room (pressed_out), but goes on decoding every state:
 *	   one that cannot be read stops the view (IngestBreakView) as it did
 *	   when the whole table was read at start.
 *	3. Past the last block the view is complete if every row fitted and no
 *	   group left shared memory for room meanwhile (pressed_out): a flush
 *	   may have moved a group's row to a block read already, but that group
 *	   was in shared memory then, and is still.  Groups of final windows
 *	   that left are never looked up again, so they do not count.
 *
 * A view without GROUP BY has one row: it is read at once.  A rebuild
 * (IngestLoadCancel) starts the view from its source instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "fs_catalog/catalog.h"
#include "engine/ingest.h"
#include "state/state_table.h"

/* Blocks read between two looks at the clock. */
#define LOAD_BLOCKS		32

typedef struct StateLoad
{
	BlockNumber nblocks;		/* the table's blocks as counted */
	BlockNumber next;			/* the next block to read */
	bool		fits;			/* every row read so far is in shared memory */
} StateLoad;

/* The one row of a view without GROUP BY, or the scalar group. */
static void
load_scalar(ViewRuntime *vr)
{
	SharedView *sv = vr->shared;
	StateScan	scan;
	StateRow	row;
	int64		rows = 0;
	int64		overflowed = 0;
	bool		complete = true;

	if (!StateScanBegin(&scan, vr->def->state_relid, &vr->def->layout, false))
	{
		vr->dropped = true;
		return;
	}
	while (StateScanNext(&scan, &row))
	{
		if (row.problem)
		{
			IngestBreakView(vr, row.problem);
			break;
		}
		rows++;
		if (vr->can_overflow && AggOverflowed(&vr->def->layout, row.block))
			overflowed++;
		vr->next_gid = Max(vr->next_gid, row.gid + 1);
		if (!DsaPointerIsValid(IngestAddLoaded(vr, GroupKeyHash(vr->gk, row.keys, row.keynulls), &row)))
			complete = false;
	}
	StateScanEnd(&scan);
	if (vr->dropped)
		return;

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	sv->complete = complete;
	sv->groups = rows;
	sv->overflowed = overflowed;
	LWLockRelease(&sv->lock);
	if (vr->next_gid == 0)
		vr->next_gid = 1;
	if (rows == 0)
		IngestEnsureScalarGroup(vr);
}

/*
 * IngestLoadState starts a view from its state table, in a transaction:
 * counts it (step 1 of the banner) and leaves the rest to IngestLoadStep.
 */
void
IngestLoadState(ViewRuntime *vr)
{
	SharedView *sv = vr->shared;
	StateCount	count;

	IngestLoadCancel(vr);
	if (vr->def->layout.scalar)
	{
		load_scalar(vr);
		return;
	}
	if (!StateTableCount(vr->def->state_relid, &vr->def->layout, vr->can_overflow, &count))
	{
		vr->dropped = true;
		return;
	}
	if (count.problem)
	{
		IngestBreakView(vr, count.problem);
		return;
	}
	vr->next_gid = Max(vr->next_gid, count.max_gid + 1);

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	sv->complete = count.rows == 0;
	sv->groups = count.rows;
	sv->overflowed = count.overflowed;
	sv->pressed_out = false;
	LWLockRelease(&sv->lock);

	if (count.rows > 0)
	{
		StateLoad  *load = MemoryContextAllocZero(vr->def->cxt, sizeof(StateLoad));

		load->nblocks = count.nblocks;
		load->fits = true;
		vr->load = load;
	}
}

/* The load is over: complete if every row is in shared memory (step 3). */
static void
load_done(ViewRuntime *vr)
{
	SharedView *sv = vr->shared;
	StateLoad  *load = vr->load;

	if (!vr->dropped)
	{
		LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
		if (load->fits && !sv->pressed_out && !sv->broken)
			sv->complete = true;
		LWLockRelease(&sv->lock);
	}
	IngestLoadCancel(vr);
}

/*
 * IngestLoadStep reads slices of a view's state table into shared memory
 * until deadline (step 2 of the banner).  Runs between batches, no flush
 * under way, in a transaction of its own unless the caller has one.
 * Returns true while rows are left to read.
 */
bool
IngestLoadStep(ViewRuntime *vr, TimestampTz deadline)
{
	StateLoad  *load = vr->load;
	SharedView *sv = vr->shared;
	int64		limit = CatalogMemoryLimit(vr->def);
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext rowcxt;
	bool		own;

	if (load == NULL)
		return false;
	if (vr->dropped)
	{
		IngestLoadCancel(vr);
		return false;
	}

	own = !IsTransactionState();
	if (own)
		StartTransactionCommand();
	PushActiveSnapshot(GetLatestSnapshot());
	rowcxt = AllocSetContextCreate(callercxt, "flowstate load", ALLOCSET_DEFAULT_SIZES);
	while (load->next < load->nblocks && !vr->dropped)
	{
		BlockNumber n = Min(LOAD_BLOCKS, load->nblocks - load->next);
		StateScan	scan;
		StateRow	row;

		/* groups leave for room: adding more would only push others out */
		if (sv->pressed_out)
			load->fits = false;
		MemoryContextSwitchTo(callercxt);
		if (!StateScanBlocks(&scan, vr->def->state_relid, &vr->def->layout, load->next, n))
		{
			vr->dropped = true;
			break;
		}
		MemoryContextSwitchTo(rowcxt);
		while (StateScanNext(&scan, &row))
		{
			if (row.problem)
			{
				IngestBreakView(vr, row.problem);
				break;
			}
			if (load->fits &&
				(sv->bytes >= limit / 2 ||
				 !DsaPointerIsValid(IngestAddLoaded(vr, GroupKeyHash(vr->gk, row.keys, row.keynulls),
												   &row))))
				load->fits = false;
			MemoryContextReset(rowcxt);
		}
		MemoryContextSwitchTo(callercxt);
		StateScanEnd(&scan);
		load->next += n;
		if (GetCurrentTimestamp() >= deadline)
			break;
	}
	MemoryContextDelete(rowcxt);
	PopActiveSnapshot();
	if (own)
		CommitTransactionCommand();
	MemoryContextSwitchTo(callercxt);

	if (vr->dropped)
		IngestLoadCancel(vr);
	else if (load->next >= load->nblocks)
		load_done(vr);
	return vr->load != NULL;
}

/* IngestLoadCancel forgets what is left to load of a view. */
void
IngestLoadCancel(ViewRuntime *vr)
{
	if (vr->load)
		pfree(vr->load);
	vr->load = NULL;
}
