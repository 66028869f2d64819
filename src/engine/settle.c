/*-------------------------------------------------------------------------
 *
 * settle.c
 *	  The settle: batches made exact, then merged.
 *
 * At the end of a batch the source calls IngestSettle, which
 *	1. resolves each group of each view and computes its new state
 *	   (merge.c), collecting the groups whose new state cannot be known;
 *	2. recomputes those from the source under a snapshot that sees every
 *	   transaction decoded so far (snapshot.c, backfill.c), asks the source
 *	   to decode up to where that snapshot stops, skipping for those groups
 *	   the transactions the snapshot saw (ingest.c), and starts over at 1.
 *	   Groups whose state the decoding up to the snapshot's end made unknown
 *	   are recomputed under the same snapshot, plus what the transactions it
 *	   did not see changed in them (kept aside while decoding): no further
 *	   decoding is needed, so the settle ends even while writers keep
 *	   deleting minima.  Only when that fails too (a transaction the
 *	   snapshot did not see deleted a minimum) does a new snapshot start a
 *	   new round;
 *	3. merges every view's batch into shared memory (merge.c).
 * After a settle no snapshot is pending, so the state in shared memory is
 * exactly that of the source at the returned position, and a flush can
 * make the two durable together at any time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "guc.h"
#include "engine/backfill.h"
#include "engine/ingest.h"

/* The memory of the settle under way: its snapshots. */
static MemoryContext settle_cxt = NULL;

/*
 * Find the groups of the batch in shared memory, and load from the state
 * tables those evicted from it.
 */
static void
resolve_groups(List *views)
{
	ListCell   *lc;
	bool		need_load = false;

	foreach(lc, views)
		need_load |= IngestResolve(lfirst(lc));
	if (need_load)
	{
		bool		own = !IsTransactionState();

		if (own)
			StartTransactionCommand();
		PushActiveSnapshot(GetLatestSnapshot());
		foreach(lc, views)
			IngestLoadGroups(lfirst(lc));
		PopActiveSnapshot();
		if (own)
			CommitTransactionCommand();
	}
}

/*
 * The groups of rows that join a changed row of a dimension, stale from
 * now on: found, and loaded if need be, before they are recomputed.
 */
static void
expand_dimensions(List *views, SyncSnapshot *snap)
{
	if (DimensionPending(views) == 0)
		return;
	DimensionExpand(views, snap);
	resolve_groups(views);
}

/* Recompute the stale groups of every view under snap. */
static void
recompute_stale(List *views, SyncSnapshot *snap, int snapno, bool add_unseen)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);
		int32		size = vr->def->layout.block_size;
		int			n;
		LocalGroup **groups;

		if (vr->dropped)
			continue;
		groups = IngestStale(vr, &n);
		if (n == 0)
			continue;
		BackfillRecompute(vr, groups, n, snap, snapno);
		for (int g = 0; g < n; g++)
		{
			groups[g]->retracted = false;
			groups[g]->dirty = false;
			if (!add_unseen && groups[g]->magnitude)
				memset(groups[g]->magnitude, 0, sizeof(double) * vr->def->layout.naggs);
			if (add_unseen && groups[g]->unseen)
			{
				memcpy(groups[g]->delta, groups[g]->unseen, size);
				groups[g]->retracted = groups[g]->unseen_retracted;
			}
			groups[g]->unseen = NULL;
			groups[g]->unseen_retracted = false;
		}
		LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
		vr->shared->recomputed += n;
		LWLockRelease(&vr->shared->lock);
	}
}

/*
 * IngestSettle settles the batches of a source's views and merges them (see
 * the file header).  catch_up decodes the source up to an LSN and returns
 * the position reached; sources without deletes pass NULL.  Returns the
 * position the merged state is exact at.
 *
 * A recompute snapshot stays registered, in a transaction left open, from
 * the moment it is taken until the groups made stale while decoding up to
 * its end are recomputed under it: catch_up runs inside that transaction
 * (a subtransaction of the flush being written, if there is one).
 */
static void
round_begin(bool outer, MemoryContext *cxt, ResourceOwner *owner)
{
	*cxt = CurrentMemoryContext;
	*owner = CurrentResourceOwner;
	if (outer)
		BeginInternalSubTransaction(NULL);
	else
		StartTransactionCommand();
	MemoryContextSwitchTo(*cxt);
}

static void
round_end(bool outer, MemoryContext cxt, ResourceOwner owner)
{
	if (outer)
		ReleaseCurrentSubTransaction();
	else
		CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

XLogRecPtr
IngestSettle(List *views, XLogRecPtr position, IngestCatchUp catch_up)
{
	ListCell   *lc;
	SyncSnapshot *snap = NULL;
	bool		reused = false;
	int			snapno = -1;
	/* a flush's transaction may be open: each round is then a subtransaction */
	bool		outer = IsTransactionState();
	MemoryContext round_cxt = NULL;
	ResourceOwner round_owner = NULL;

	if (settle_cxt == NULL)
		settle_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate settle",
										   ALLOCSET_SMALL_SIZES);

	for (;;)
	{
		int			stale = 0;

		resolve_groups(views);

		foreach(lc, views)
			stale += IngestComputeMerged(lfirst(lc));
		/* rows of dimensions changed: their groups go stale under a snapshot */
		stale += DimensionPending(views);
		if (stale == 0)
			break;
		if (catch_up == NULL)
			elog(ERROR, "flowstate group cannot be recomputed from its source");

		if (snap != NULL && !reused && IngestUnseenValid())
		{
			/* decoded up to the snapshot's end: recompute under it again */
			expand_dimensions(views, snap);
			recompute_stale(views, snap, snapno, true);
			reused = true;
			continue;
		}

		/* a new round: recompute, then decode to where the snapshot stops */
		if (snap != NULL)
		{
			SyncSnapshotDone(snap);
			round_end(outer, round_cxt, round_owner);
		}
		round_begin(outer, &round_cxt, &round_owner);
		snap = SyncSnapshotTake(settle_cxt);
		snapno = IngestSnapshotAdd(snap);
		reused = false;
		foreach(lc, views)
		{
			ViewRuntime *vr = lfirst(lc);

			for (LocalGroup *lg = vr->first; lg; lg = lg->next)
			{
				lg->unseen = NULL;
				lg->unseen_retracted = false;
			}
		}
		expand_dimensions(views, snap);
		recompute_stale(views, snap, snapno, false);
		position = catch_up(snap->lsn);
	}
	if (snap != NULL)
	{
		SyncSnapshotDone(snap);
		round_end(outer, round_cxt, round_owner);
	}
	IngestSnapshotsEnd();
	DimensionSettled(views);

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (IngestMerge(vr, position))
			continue;

		/*
		 * Shared memory cannot take the batch even though the view was
		 * within its memory before it: transactions changed more of its
		 * groups than it holds.  Its state goes, and a backfill, which
		 * keeps within its memory, reads it again from the table.
		 */
		IngestBatchReset(vr);
		vr->rebuild = true;
		LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
		vr->shared->status = VIEW_STARTING;
		LWLockRelease(&vr->shared->lock);
		ereport(WARNING,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("continuous view \"%s\" is rebuilt: a transaction changed more of its groups than shared memory can hold",
						vr->def->view_name),
				 errdetail("The groups of all continuous views hold %lld kB; flowstate.memory_limit is %d kB.",
						   (long long) (StoreTotalBytes() / 1024), flowstate_memory_limit),
				 errhint("Increase flowstate.memory_limit, or change fewer groups per transaction.")));
	}

	MemoryContextReset(settle_cxt);
	return position;
}
