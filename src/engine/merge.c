/*-------------------------------------------------------------------------
 *
 * merge.c
 *	  Batches into shared memory.
 *
 * The settle (settle.c) of a view's batch
 *	1. resolves each group: finds it in shared memory, or loads it from the
 *	   state table when shared memory does not hold every group
 *	   (IngestResolve, IngestLoadGroups);
 *	2. computes each group's new state, stored state + delta, and collects
 *	   the groups whose new state cannot be known (IngestComputeMerged,
 *	   IngestStale): a deleted minimum, a group out of range losing rows...;
 *	3. merges the batch into shared memory (IngestMerge) under the view's
 *	   lock held exclusively, all its groups or none: readers see whole
 *	   batches, hence whole source transactions, never part of one.
 * A view that several Kafka workers write merges each worker's batch on its
 * own (IngestApplyShared).  The state table comes into shared memory in the
 * background after a worker's start (state_load.c).
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

/* Step 1: find each group of the batch in shared memory; true if some must be loaded. */
bool
IngestResolve(ViewRuntime *vr)
{
	SharedView *sv = vr->shared;
	bool		need_load = false;

	if (vr->first == NULL || vr->dropped)
		return false;
	LWLockAcquire(&sv->lock, LW_SHARED);
	for (LocalGroup *lg = vr->first; lg; lg = lg->next)
	{
		if (lg->resolved)
			continue;
		lg->entry = StoreLookup(sv, vr->gk, lg->hash, lg->values, lg->isnull);
		if (DsaPointerIsValid(lg->entry) || sv->complete || lg->base != NULL)
			lg->resolved = true;
		else
			need_load = true;
	}
	LWLockRelease(&sv->lock);
	return need_load;
}

/*
 * IngestAddLoaded adds a group read from the state table to shared memory,
 * unless it is there already; returns it, invalid if shared memory is full.
 */
dsa_pointer
IngestAddLoaded(ViewRuntime *vr, uint32 hash, StateRow *row)
{
	const ViewLayout *layout = &vr->def->layout;
	Size		keylen = GroupKeySize(layout, row->keys, row->keynulls);
	char	   *key = palloc(keylen);
	dsa_pointer dp;

	GroupKeyWrite(layout, row->keys, row->keynulls, key);
	LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
	dp = StoreLookup(vr->shared, vr->gk, hash, row->keys, row->keynulls);
	if (!DsaPointerIsValid(dp))
		dp = StoreAddGroup(vr->shared, hash, key, keylen, row->block, row->gid,
						   &row->tid, false);
	LWLockRelease(&vr->shared->lock);
	return dp;
}

/* Step 1b: load the groups shared memory lacks from the state table. */
void
IngestLoadGroups(ViewRuntime *vr)
{
	StateScan	scan;

	if (vr->dropped)
		return;
	if (!StateScanBegin(&scan, vr->def->state_relid, &vr->def->layout, true))
	{
		vr->dropped = true;
		return;
	}
	for (LocalGroup *lg = vr->first; lg; lg = lg->next)
	{
		StateRow	row;

		if (lg->resolved)
			continue;
		if (StateLookup(&scan, lg->values, lg->isnull, &row))
		{
			if (row.problem)
			{
				IngestBreakView(vr, row.problem);
				break;
			}
			lg->entry = IngestAddLoaded(vr, lg->hash, &row);
			if (!DsaPointerIsValid(lg->entry))
			{
				/* no room: the batch keeps it, with the row it replaces */
				MemoryContext oldcxt = MemoryContextSwitchTo(vr->batch_cxt);

				lg->base = palloc(vr->def->layout.block_size);
				memcpy(lg->base, row.block, vr->def->layout.block_size);
				AggCopyVars(&vr->def->layout, lg->base);
				MemoryContextSwitchTo(oldcxt);
				lg->loaded_gid = row.gid;
				lg->loaded_tid = row.tid;
				lg->loaded_overflowed = vr->can_overflow &&
					AggOverflowed(&vr->def->layout, row.block);
			}
		}
		lg->resolved = true;
	}
	StateScanEnd(&scan);
}

/*
 * IngestBreakView stops a view whose state table holds a state that cannot
 * be read (a corrupt row, or one written for another layout): it is fed no
 * more (dropped), its readers get the error and flowstate.views shows it
 * (StoreBreakView), while the worker and the other views go on.  Dropping
 * the view and creating it again makes it exact again.
 */
void
IngestBreakView(ViewRuntime *vr, const char *problem)
{
	char	   *message = psprintf("state of continuous view \"%s\" cannot be read: %s",
								   vr->def->view_name, problem);

	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("%s", message),
			 errdetail("The continuous view is no longer maintained; its reads fail."),
			 errhint("Drop the continuous view with flowstate.drop_view() and create it again.")));
	vr->dropped = true;
	StoreBreakView(vr->shared, message);
	pfree(message);
}

/* Step 2: compute the new state of every group; returns the stale ones' count. */
int
IngestComputeMerged(ViewRuntime *vr)
{
	SharedView *sv = vr->shared;
	int32		size = vr->def->layout.block_size;
	int			stale = 0;
	MemoryContext oldcxt;
	MemoryContext callercxt = CurrentMemoryContext;
	/* generic aggregates' functions may read the catalog */
	bool		own_xact = vr->rt->needs_xact && !vr->dropped && !IsTransactionState();

	if (vr->dropped)
		return 0;
	if (own_xact)
	{
		StartTransactionCommand();
		MemoryContextSwitchTo(callercxt);
	}
	oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	LWLockAcquire(&sv->lock, LW_SHARED);
	for (LocalGroup *lg = vr->first; lg; lg = lg->next)
	{
		char	   *block;

		if (lg->dirty)
		{
			lg->merged = NULL;
			stale++;
			continue;
		}
		block = palloc(size);
		if (lg->base)
			memcpy(block, lg->base, size);
		else if (DsaPointerIsValid(lg->entry))
			StoreReadBlock(sv, lg->entry, block);
		else
			memset(block, 0, size);
		/*
		 * Float sums cannot always take rows back: a group out of range
		 * that loses rows may be back in range, and a sum that loses its
		 * large terms keeps the rounding errors they made.  Its table can
		 * tell.
		 */
		if (lg->retracted && vr->float_sums)
		{
			char	   *before = palloc(size);

			memcpy(before, block, size);
			if (!AggMerge(vr->rt, block, lg->delta) ||
				AggOverflowed(&vr->def->layout, block) ||
				AggLostPrecision(&vr->def->layout, before, lg->delta, block, lg->magnitude))
				block = NULL;
			pfree(before);
		}
		else if (!AggMerge(vr->rt, block, lg->delta))
			block = NULL;
		if (block)
			lg->merged = block;
		else
		{
			lg->merged = NULL;
			stale++;
		}
	}
	LWLockRelease(&sv->lock);
	MemoryContextSwitchTo(oldcxt);
	if (own_xact)
	{
		CommitTransactionCommand();
		MemoryContextSwitchTo(callercxt);
	}
	return stale;
}

/*
 * IngestStale returns the groups of the batch whose new state is unknown.
 */
LocalGroup **
IngestStale(ViewRuntime *vr, int *n)
{
	LocalGroup **out = MemoryContextAlloc(vr->batch_cxt, sizeof(LocalGroup *) * Max(vr->ngroups, 1));

	*n = 0;
	for (LocalGroup *lg = vr->first; lg; lg = lg->next)
		if (lg->merged == NULL)
			out[(*n)++] = lg;
	return out;
}

/*
 * Prepare the shared memory for n groups' blocks of view sv (StorePrepare);
 * on failure, free what was prepared and return false.  Caller holds the
 * view's lock exclusively.
 */
static bool
prepare_writes(SharedView *sv, StoreWrite *w, int n, dsa_pointer *entries,
			   Size *keylens, char **blocks, bool fresh)
{
	int			nvars = sv->layout.nvars;
	dsa_pointer *vars = palloc(sizeof(dsa_pointer) * Max(nvars, 1) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		w[i].vars = vars + i * Max(nvars, 1);
		w[i].fresh = fresh && DsaPointerIsValid(entries[i]);
		if (!StorePrepare(sv, &w[i], entries[i], keylens[i], blocks[i]))
		{
			for (int j = 0; j < i; j++)
				StoreCancel(sv, &w[j], nvars);
			return false;
		}
	}
	return true;
}

/*
 * IngestApplyShared merges the batch of a view that several workers write
 * (a Kafka stream's; see state_store.c), with the offsets it goes up to.
 * Rows only arrive, so a group's new state is always its state plus its
 * delta, computed under the view's lock from whatever the group holds
 * then.  Groups that left shared memory are read from the state table
 * first, without the lock; should groups leave meanwhile, it starts over.
 * The caller has found sv (holding its partition lock, unless it owns it).
 * The batch is written whole or not at all: when shared memory cannot take
 * it, nothing changes, the batch is kept, and it returns false.
 */
bool
IngestApplyShared(ViewRuntime *vr, SharedView *sv)
{
	const ViewLayout *layout = &vr->def->layout;
	int32		size = layout->block_size;
	MemoryContext oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	bool		full = false;

	for (;;)
	{
		uint64		evictions;
		bool		need_load = false;

		LWLockAcquire(&sv->lock, LW_SHARED);
		if (sv->broken)
		{
			/* its state cannot be read (IngestBreakView, by any worker) */
			LWLockRelease(&sv->lock);
			vr->dropped = true;
			MemoryContextSwitchTo(oldcxt);
			IngestBatchReset(vr);
			return true;
		}
		evictions = sv->evictions;
		for (LocalGroup *lg = vr->first; lg; lg = lg->next)
		{
			lg->resolved = sv->complete || lg->base != NULL ||
				DsaPointerIsValid(StoreLookup(sv, vr->gk, lg->hash, lg->values, lg->isnull));
			need_load |= !lg->resolved;
		}
		LWLockRelease(&sv->lock);

		if (need_load)
		{
			bool		own = !IsTransactionState();
			StateScan	scan;

			if (own)
				StartTransactionCommand();
			/* the rows read outlive the transaction: in the batch's memory */
			MemoryContextSwitchTo(vr->batch_cxt);
			PushActiveSnapshot(GetLatestSnapshot());
			if (StateScanBegin(&scan, vr->def->state_relid, &vr->def->layout, true))
			{
				for (LocalGroup *lg = vr->first; lg; lg = lg->next)
				{
					StateRow	row;

					if (lg->resolved)
						continue;
					if (StateLookup(&scan, lg->values, lg->isnull, &row))
					{
						if (row.problem)
						{
							IngestBreakView(vr, row.problem);
							break;
						}
						lg->base = row.block;
						lg->loaded_gid = row.gid;
						lg->loaded_tid = row.tid;
						lg->loaded_overflowed = vr->can_overflow &&
							AggOverflowed(layout, row.block);
					}
				}
				StateScanEnd(&scan);
			}
			else
				vr->dropped = true;
			PopActiveSnapshot();
			if (own)
				CommitTransactionCommand();
			MemoryContextSwitchTo(vr->batch_cxt);
			if (vr->dropped && sv->broken)
				continue;		/* broken meanwhile: the batch goes */
		}

		LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
		if (sv->evictions != evictions)
		{
			/* groups left between the two looks: look again */
			LWLockRelease(&sv->lock);
			for (LocalGroup *lg = vr->first; lg; lg = lg->next)
			{
				lg->base = NULL;
				lg->loaded_gid = 0;
			}
			continue;
		}
		break;
	}

	/* the new states, then the memory for all of them, then the writes */
	{
		int			n = vr->ngroups;
		char	  **blocks = palloc(sizeof(char *) * Max(n, 1));
		char	  **keys = palloc(sizeof(char *) * Max(n, 1));
		Size	   *keylens = palloc(sizeof(Size) * Max(n, 1));
		dsa_pointer *entries = palloc(sizeof(dsa_pointer) * Max(n, 1));
		StoreWrite *writes = palloc(sizeof(StoreWrite) * Max(n, 1));
		int			i = 0;

		for (LocalGroup *lg = vr->first; lg; lg = lg->next, i++)
		{
			dsa_pointer dp = StoreLookup(sv, vr->gk, lg->hash, lg->values, lg->isnull);

			blocks[i] = palloc(size);
			if (DsaPointerIsValid(dp))
				StoreReadBlock(sv, dp, blocks[i]);
			else if (lg->base)
				memcpy(blocks[i], lg->base, size);
			else
				memset(blocks[i], 0, size);
			if (!AggMerge(vr->rt, blocks[i], lg->delta))
				elog(ERROR, "flowstate group of a stream went stale");
			entries[i] = dp;
			keys[i] = NULL;
			keylens[i] = 0;
			if (!DsaPointerIsValid(dp))
			{
				keylens[i] = GroupKeySize(layout, lg->values, lg->isnull);
				keys[i] = palloc(keylens[i]);
				GroupKeyWrite(layout, lg->values, lg->isnull, keys[i]);
			}
		}
		full = !prepare_writes(sv, writes, n, entries, keylens, blocks, false);
		i = 0;
		for (LocalGroup *lg = vr->first; lg && !full; lg = lg->next, i++)
		{
			writes[i].stored_overflowed = lg->loaded_overflowed;
			(void) StoreFinish(sv, &writes[i], lg->hash, keys[i], blocks[i],
							   lg->base ? lg->loaded_gid : 0,
							   lg->base ? &lg->loaded_tid : NULL, true);
		}
	}
	if (full)
	{
		/* nothing changed: the batch is kept, its groups to be read again */
		LWLockRelease(&sv->lock);
		MemoryContextSwitchTo(oldcxt);
		for (LocalGroup *lg = vr->first; lg; lg = lg->next)
		{
			lg->base = NULL;
			lg->loaded_gid = 0;
		}
		return false;
	}
	if (vr->noffsets > 0)
		StoreSetOffsets(sv, vr->next_offsets, vr->part_max_ts, vr->noffsets, GetCurrentTimestamp());
	sv->rows_applied += vr->batch_rows;
	sv->late_rows += vr->batch_late;
	sv->failed_rows += vr->batch_failed;
	/* a stream's watermark is that of its last flush (FlushStep) */
	LWLockRelease(&sv->lock);
	MemoryContextSwitchTo(oldcxt);

	vr->last_merge_at = GetCurrentTimestamp();
	IngestBatchReset(vr);
	for (int p = 0; p < vr->noffsets; p++)
	{
		vr->next_offsets[p] = -1;
		vr->part_max_ts[p] = PG_INT64_MIN;
	}
	return true;
}

/*
 * IngestMerge writes the settled batch of a view to shared memory under the
 * view's lock, and starts a new batch.  The batch is written whole or not
 * at all: when shared memory cannot take it, nothing changes, the batch is
 * kept, and it returns false.
 */
bool
IngestMerge(ViewRuntime *vr, XLogRecPtr position)
{
	SharedView *sv = vr->shared;
	const ViewLayout *layout = &vr->def->layout;
	TimestampTz now = GetCurrentTimestamp();
	char	  **keys = NULL;
	Size	   *keylens = NULL;
	char	  **blocks = NULL;
	dsa_pointer *entries = NULL;
	StoreWrite *writes = NULL;
	char	   *empty = NULL;
	int			i;
	long		secs;
	int			usecs;
	MemoryContext oldcxt;

	if (vr->dropped)
	{
		IngestBatchReset(vr);
		return true;
	}
	oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	if (vr->ngroups > 0)
	{
		LocalGroup *lg;

		keys = palloc(sizeof(char *) * vr->ngroups);
		keylens = palloc(sizeof(Size) * vr->ngroups);
		blocks = palloc(sizeof(char *) * vr->ngroups);
		entries = palloc(sizeof(dsa_pointer) * vr->ngroups);
		writes = palloc(sizeof(StoreWrite) * vr->ngroups);
		for (lg = vr->first, i = 0; lg; lg = lg->next, i++)
		{
			if (lg->merged == NULL)
				elog(ERROR, "flowstate group merged before it settled");
			keys[i] = NULL;
			keylens[i] = 0;
			blocks[i] = lg->merged;
			entries[i] = lg->entry;
			if (!DsaPointerIsValid(lg->entry))
			{
				keylens[i] = GroupKeySize(layout, lg->values, lg->isnull);
				keys[i] = palloc(keylens[i]);
				GroupKeyWrite(layout, lg->values, lg->isnull, keys[i]);
			}
		}
	}
	if (vr->truncated)
		empty = palloc0(layout->block_size);

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);

	/* first the memory of every group, or nothing changes */
	if (!prepare_writes(sv, writes, vr->ngroups, entries, keylens, blocks, vr->truncated))
	{
		LWLockRelease(&sv->lock);
		MemoryContextSwitchTo(oldcxt);
		return false;
	}

	if (vr->truncated)
	{
		/* every group is gone, and the state table's rows with them */
		dsa_pointer dp = sv->head;

		while (DsaPointerIsValid(dp))
		{
			StoreEntry *e = StoreEntryGet(sv, dp);
			dsa_pointer next = e->next;

			/* an empty block has no var field to allocate: cannot fail */
			if (!StoreWriteBlock(sv, dp, empty))
				elog(ERROR, "flowstate could not empty a group");
			dp = next;
		}
		sv->truncate_seq = sv->pending_seq;
		sv->overflowed = 0;
	}
	{
		LocalGroup *lg;

		/* a group read from the state table keeps its row */
		for (lg = vr->first, i = 0; lg; lg = lg->next, i++)
		{
			writes[i].stored_overflowed = lg->loaded_overflowed && !vr->truncated;
			lg->entry = StoreFinish(sv, &writes[i], lg->hash, keys[i], lg->merged,
									lg->loaded_gid,
									lg->loaded_gid != 0 ? &lg->loaded_tid : NULL, true);
		}
	}
	sv->rows_applied += vr->batch_rows;
	sv->late_rows += vr->batch_late;
	sv->failed_rows += vr->batch_failed;
	if (position > sv->applied_lsn)
		sv->applied_lsn = position;
	/* no side row waits for a flush: those of the batch are all written */
	if (vr->pending == NIL && !vr->sides_in_flight && position > sv->sides_lsn)
		sv->sides_lsn = position;
	if (vr->has_watermark)
	{
		sv->has_watermark = true;
		sv->watermark = vr->max_ts - vr->def->watermark_delay_us;
	}
	TimestampDifference(vr->last_merge_at, now, &secs, &usecs);
	if (secs > 0 || usecs > 0)
	{
		double		rate = vr->batch_rows / (secs + usecs / 1e6);
		double		weight = Min(1.0, (secs + usecs / 1e6) / 5.0);

		sv->rows_per_second = sv->rows_per_second * (1.0 - weight) + rate * weight;
	}
	LWLockRelease(&sv->lock);
	MemoryContextSwitchTo(oldcxt);
	vr->last_merge_at = now;

	IngestBatchReset(vr);
	return true;
}

/*
 * IngestUnresolve forgets where the batch's groups are in shared memory
 * (groups left): the next merge finds them again.
 */
void
IngestUnresolve(ViewRuntime *vr)
{
	for (LocalGroup *lg = vr->first; lg; lg = lg->next)
	{
		lg->entry = InvalidDsaPointer;
		lg->resolved = false;
	}
}

/*
 * IngestMergeInserts merges a batch that only added rows (a backfill): no
 * group can be stale.  Groups the backfill wrote to the state table and
 * evicted are read back, in the backfill's transaction.  Returns false,
 * keeping the batch, when shared memory cannot take it.
 */
bool
IngestMergeInserts(ViewRuntime *vr, XLogRecPtr position)
{
	if (IngestResolve(vr))
	{
		PushActiveSnapshot(GetLatestSnapshot());
		IngestLoadGroups(vr);
		PopActiveSnapshot();
	}
	if (IngestComputeMerged(vr) > 0)
		elog(ERROR, "flowstate backfill batch did not settle");
	return IngestMerge(vr, position);
}
