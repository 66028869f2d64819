/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  Rows into continuous views.
 *
 * A source row (a decoded tuple, a backfilled one, a Kafka message) is
 * evaluated with the view's compiled defining query (projection.c) and
 * accumulated, with a sign, into the delta of its group in the view's
 * current *batch*: a backend-local hash table of the groups the batch
 * touched.
 *
 * At the end of a batch the source calls IngestSettle, which
 *	1. resolves each group: finds it in shared memory, or loads it from the
 *	   state table (when shared memory does not hold every group);
 *	2. computes each group's new state, stored state + delta, and collects
 *	   the groups whose new state cannot be known (a deleted minimum...);
 *	3. recomputes those from the source under a snapshot that sees every
 *	   transaction decoded so far (backfill.c), asks the source to decode up
 *	   to where that snapshot stops, skipping for those groups the
 *	   transactions the snapshot saw, and starts over at 1.  Groups whose
 *	   state the decoding up to the snapshot's end made unknown are
 *	   recomputed under the same snapshot, plus what the transactions it did
 *	   not see changed in them (kept aside while decoding): no further
 *	   decoding is needed, so the settle ends even while writers keep
 *	   deleting minima.  Only when that fails too (a transaction the snapshot
 *	   did not see deleted a minimum) does a new snapshot start a new round;
 *	4. merges every view's batch into shared memory, each view under its
 *	   lock held exclusively: readers see whole batches, hence whole source
 *	   transactions, never part of one.
 * After a settle no snapshot is pending, so the state in shared memory is
 * exactly that of the source at the returned position, and a flush can
 * make the two durable together at any time.
 *
 * Dead letters and late events (projection.c) are written with the next
 * flush.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "fs_catalog/catalog.h"
#include "guc.h"
#include "engine/ingest.h"
#include "state/state_table.h"


/* Recompute snapshots of the settle under way. */
static List *settle_snaps = NIL;
static bool *txn_seen = NULL;
static int	txn_seen_size = 0;
static MemoryContext settle_cxt = NULL;

/*
 * The settle's latest snapshot, while groups keep what the transactions it
 * did not see change in them (LocalGroup.unseen), or -1; unseen_valid is
 * cleared by a TRUNCATE, which unseen blocks cannot express.
 */
static int	unseen_snap = -1;
static bool unseen_valid = false;

/*
 * IngestViewCreate compiles a view for ingestion; everything lives in cxt
 * until IngestViewDestroy.
 */
ViewRuntime *
IngestViewCreate(ViewDef *def, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	ViewRuntime *vr = palloc0(sizeof(ViewRuntime));

	vr->def = def;
	vr->gk = GroupKeysCreate(&def->layout);
	vr->rt = AggRuntimeCreate(&def->layout);
	vr->float_sums = AggKeepsFloatSums(&def->layout);
	vr->refuse_overflow = vr->float_sums && def->stream;
	ProjectionCompile(vr);
	vr->batch_cxt = AllocSetContextCreate(cxt, "flowstate view batch", ALLOCSET_DEFAULT_SIZES);
	vr->pending_cxt = AllocSetContextCreate(cxt, "flowstate view pending rows", ALLOCSET_DEFAULT_SIZES);
	vr->last_merge_at = GetCurrentTimestamp();
	/* the watermark goes on from where the last flush left it */
	vr->has_watermark = vr->persisted_watermark = def->has_max_event_time;
	vr->max_ts = vr->persisted_max_ts = def->max_event_time;
	MemoryContextSwitchTo(oldcxt);
	return vr;
}

void
IngestViewDestroy(ViewRuntime *vr)
{
	FreeExprContext(vr->econtext, false);
	ExecDropSingleTupleTableSlot(vr->result);
	MemoryContextDelete(vr->batch_cxt);
	MemoryContextDelete(vr->pending_cxt);
}

/*
 * IngestTxnBegin is called before the changes of a source transaction:
 * it decides which snapshots saw the transaction already.
 */
void
IngestTxnBegin(List *views, TransactionId xid, XLogRecPtr commit_lsn)
{
	ListCell   *lc;
	int			i = 0;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);

		vr->skip_txn = vr->backfill_snap != NULL &&
			SyncSnapshotSees(vr->backfill_snap, xid, commit_lsn);
	}
	foreach(lc, settle_snaps)
		txn_seen[i++] = SyncSnapshotSees(lfirst(lc), xid, commit_lsn);
}

/* Find a group of the batch, or add it. */
static LocalGroup *
batch_group(ViewRuntime *vr, uint32 hash, const Datum *values, const bool *isnull)
{
	const ViewLayout *layout = &vr->def->layout;
	LocalGroup *lg;
	uint32		mask;
	uint32		i;
	MemoryContext oldcxt;

	if (vr->table == NULL || vr->ngroups * 2 >= vr->table_size)
	{
		uint32		newsize = vr->table == NULL ? 256 : vr->table_size * 2;
		LocalGroup **newtable = MemoryContextAllocZero(vr->batch_cxt,
													   sizeof(LocalGroup *) * newsize);

		for (lg = vr->first; lg; lg = lg->next)
		{
			i = lg->hash & (newsize - 1);
			while (newtable[i])
				i = (i + 1) & (newsize - 1);
			newtable[i] = lg;
		}
		vr->table = newtable;
		vr->table_size = newsize;
	}

	mask = vr->table_size - 1;
	for (i = hash & mask; vr->table[i]; i = (i + 1) & mask)
	{
		lg = vr->table[i];
		if (lg->hash == hash &&
			GroupKeyEqual(vr->gk, lg->values, lg->isnull, values, isnull))
			return lg;
	}

	oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	lg = palloc0(sizeof(LocalGroup));
	lg->hash = hash;
	lg->values = palloc(sizeof(Datum) * Max(layout->nkeys, 1));
	lg->isnull = palloc(sizeof(bool) * Max(layout->nkeys, 1));
	for (int k = 0; k < layout->nkeys; k++)
	{
		lg->isnull[k] = isnull[k];
		lg->values[k] = isnull[k] ? (Datum) 0 :
			datumCopy(values[k], layout->keys[k].typbyval, layout->keys[k].typlen);
	}
	lg->delta = palloc0(layout->block_size);
	if (vr->float_sums)
		lg->magnitude = palloc0(sizeof(double) * layout->naggs);
	if (vr->truncated)
		lg->base = palloc0(layout->block_size);
	MemoryContextSwitchTo(oldcxt);
	lg->entry = InvalidDsaPointer;
	lg->skip_snap = -1;
	if (vr->last)
		vr->last->next = lg;
	else
		vr->first = lg;
	vr->last = lg;
	vr->table[i] = lg;
	vr->ngroups++;
	return lg;
}

/* Accumulate the evaluated row (vr->result) into a block. */
static void
accumulate(ViewRuntime *vr, char *block, int sign)
{
	const ViewLayout *layout = &vr->def->layout;
	Datum	   *values = vr->result->tts_values;
	bool	   *isnull = vr->result->tts_isnull;

	for (int i = 0; i < layout->naggs; i++)
	{
		if (vr->filter_col[i] >= 0 &&
			(isnull[vr->filter_col[i]] || !DatumGetBool(values[vr->filter_col[i]])))
			continue;
		if (vr->arg_col[i] < 0)
			AggAccumulate(vr->rt, i, block, (Datum) 0, false, sign);
		else
			AggAccumulate(vr->rt, i, block, values[vr->arg_col[i]],
						  isnull[vr->arg_col[i]], sign);
	}
	BLOCK_NROWS(block) += sign;
}

/*
 * Whether accumulating the evaluated row into delta would make a float sum
 * of the group, base merged with delta, overflow.
 */
static bool
row_overflows(ViewRuntime *vr, const char *base, const char *delta, int sign)
{
	const ViewLayout *layout = &vr->def->layout;
	Datum	   *values = vr->result->tts_values;
	bool	   *isnull = vr->result->tts_isnull;

	for (int i = 0; i < layout->naggs; i++)
	{
		int			col = vr->arg_col[i];

		if (col < 0 || isnull[col])
			continue;
		if (vr->filter_col[i] >= 0 &&
			(isnull[vr->filter_col[i]] || !DatumGetBool(values[vr->filter_col[i]])))
			continue;
		if (AggWouldOverflow(vr->rt, i, base, delta, values[col], sign))
			return true;
	}
	return false;
}

/* Note the largest input the batch adds to or removes from a float sum. */
static void
note_magnitude(ViewRuntime *vr, LocalGroup *lg)
{
	const ViewLayout *layout = &vr->def->layout;

	for (int i = 0; i < layout->naggs; i++)
	{
		int			col = vr->arg_col[i];

		if (col >= 0 && !vr->result->tts_isnull[col])
			lg->magnitude[i] = Max(lg->magnitude[i],
								   AggInputMagnitude(layout, i, vr->result->tts_values[col]));
	}
}

/*
 * The state a group of the batch adds its delta to: the recomputed or
 * emptied one, else what shared memory held when the batch first touched
 * the group (NULL: nothing, a new group).  A group that left shared memory
 * counts as new here.
 */
static const char *
group_base(ViewRuntime *vr, LocalGroup *lg)
{
	SharedView *sv = vr->shared;
	dsa_pointer dp;

	if (lg->base)
		return lg->base;
	if (lg->stored_read)
		return lg->stored;
	lg->stored_read = true;
	LWLockAcquire(&sv->lock, LW_SHARED);
	dp = StoreLookup(sv, vr->gk, lg->hash, lg->values, lg->isnull);
	if (DsaPointerIsValid(dp))
	{
		lg->stored = MemoryContextAlloc(vr->batch_cxt, vr->def->layout.block_size);
		StoreReadBlock(sv, dp, lg->stored);
	}
	LWLockRelease(&sv->lock);
	return lg->stored;
}

/* Evaluate a row and accumulate it into its group of the batch. */
static void
ingest_row(ViewRuntime *vr, TupleTableSlot *slot, int sign, XLogRecPtr lsn, bool lateness)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	Datum		keys[FLOWSTATE_MAX_KEYS];
	bool		keynulls[FLOWSTATE_MAX_KEYS];
	LocalGroup *lg;

	if (!ProjectionEvaluate(vr, slot, lsn, true))
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	/* event time goes forward with the rows that arrive */
	if (sign > 0 && vr->ts_col >= 0 && !vr->result->tts_isnull[vr->ts_col])
	{
		int64		ts = DatumGetInt64(vr->result->tts_values[vr->ts_col]);

		if (!vr->has_watermark || ts > vr->max_ts)
		{
			vr->max_ts = ts;
			vr->has_watermark = true;
		}
	}
	/* a rebuild keeps the state of final windows: their rows were counted or refused */
	if (vr->keep_final && !vr->result->tts_isnull[vr->key_col[vr->def->window.keyno]] &&
		DatumGetInt64(vr->result->tts_values[vr->key_col[vr->def->window.keyno]]) <= vr->final_cutoff)
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	if (lateness && ProjectionIsLate(vr, slot, sign, lsn))
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	for (int i = 0; i < vr->def->layout.nkeys; i++)
	{
		keys[i] = vr->result->tts_values[vr->key_col[i]];
		keynulls[i] = vr->result->tts_isnull[vr->key_col[i]];
	}
	lg = batch_group(vr, GroupKeyHash(vr->gk, keys, keynulls), keys, keynulls);
	MemoryContextSwitchTo(vr->batch_cxt);
	if (lg->skip_snap < 0 || !txn_seen[lg->skip_snap])
	{
		/* a message that would overflow a float sum is refused whole */
		if (vr->refuse_overflow &&
			row_overflows(vr, group_base(vr, lg), lg->delta, sign))
		{
			ProjectionRefuse(vr, slot, lsn, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
							 "value out of range: overflow");
			MemoryContextSwitchTo(oldcxt);
			return;
		}
		accumulate(vr, lg->delta, sign);
		lg->retracted |= sign < 0;
		if (vr->float_sums)
			note_magnitude(vr, lg);
		vr->batch_rows++;
	}
	if (unseen_snap >= 0 && !txn_seen[unseen_snap])
	{
		if (lg->unseen == NULL)
			lg->unseen = palloc0(vr->def->layout.block_size);
		accumulate(vr, lg->unseen, sign);
		lg->unseen_retracted |= sign < 0;
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * IngestRow adds (sign +1) or removes (sign -1) a source row of a view, as
 * of the WAL position lsn.
 */
void
IngestRow(ViewRuntime *vr, TupleTableSlot *slot, int sign, XLogRecPtr lsn)
{
	if (vr->skip_txn || vr->dropped)
		return;
	ingest_row(vr, slot, sign, lsn, true);
}

/*
 * IngestBackfillRow adds a row the source held when the view was created.
 */
void
IngestBackfillRow(ViewRuntime *vr, TupleTableSlot *slot)
{
	ingest_row(vr, slot, 1, InvalidXLogRecPtr, false);
}

/*
 * IngestEvaluateKey evaluates the defining query on a source row; returns
 * false if the row does not belong to the view, else its group key (valid
 * until the next evaluation).  IngestAccumulate then adds the row to a
 * block.  Used to recompute groups.
 */
bool
IngestEvaluateKey(ViewRuntime *vr, TupleTableSlot *slot, Datum *keys, bool *keynulls)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	/* the row was recorded when it came, if it failed then */
	bool		ok = ProjectionEvaluate(vr, slot, InvalidXLogRecPtr, false);

	MemoryContextSwitchTo(oldcxt);
	if (!ok)
		return false;
	for (int i = 0; i < vr->def->layout.nkeys; i++)
	{
		keys[i] = vr->result->tts_values[vr->key_col[i]];
		keynulls[i] = vr->result->tts_isnull[vr->key_col[i]];
	}
	return true;
}

void
IngestAccumulate(ViewRuntime *vr, char *block)
{
	MemoryContext oldcxt;

	oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	accumulate(vr, block, 1);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * IngestTruncate empties a view as of the current point of its batch.
 */
void
IngestTruncate(ViewRuntime *vr)
{
	int32		size = vr->def->layout.block_size;

	if (vr->skip_txn || vr->dropped)
		return;
	unseen_valid = false;
	for (LocalGroup *lg = vr->first; lg; lg = lg->next)
	{
		if (lg->skip_snap >= 0 && txn_seen[lg->skip_snap])
			continue;
		memset(lg->delta, 0, size);
		lg->retracted = false;
		if (lg->base == NULL)
			lg->base = MemoryContextAlloc(vr->batch_cxt, size);
		memset(lg->base, 0, size);
	}
	vr->truncated = true;
}

/* Step 1: find each group of the batch in shared memory; true if some must be loaded. */
static bool
resolve(ViewRuntime *vr)
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

/* Add a group read from the state table to shared memory; invalid if full. */
static dsa_pointer
add_loaded(ViewRuntime *vr, uint32 hash, StateRow *row)
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
static void
load_groups(ViewRuntime *vr)
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
			lg->entry = add_loaded(vr, lg->hash, &row);
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
				lg->loaded_overflowed = vr->float_sums &&
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

/*
 * IngestLoadState fills shared memory from a view's state table at worker
 * start, as far as the view's memory allows; if all of it fits, the view is
 * complete and new groups need no lookup.
 */
void
IngestLoadState(ViewRuntime *vr)
{
	SharedView *sv = vr->shared;
	StateScan	scan;
	StateRow	row;
	int64		rows = 0;
	int64		overflowed = 0;
	int64		limit = CatalogMemoryLimit(vr->def);
	bool		complete = true;
	MemoryContext rowcxt;
	MemoryContext oldcxt;

	/* the scan lives in the caller's context, each row in rowcxt */
	if (!StateScanBegin(&scan, vr->def->state_relid, &vr->def->layout, false))
	{
		vr->dropped = true;
		return;
	}
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate load",
								   ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(rowcxt);
	while (StateScanNext(&scan, &row))
	{
		if (row.problem)
		{
			IngestBreakView(vr, row.problem);
			break;
		}
		rows++;
		if (vr->float_sums && AggOverflowed(&vr->def->layout, row.block))
			overflowed++;
		vr->next_gid = Max(vr->next_gid, row.gid + 1);
		if (!complete || sv->bytes >= limit / 2 ||
			!DsaPointerIsValid(add_loaded(vr, GroupKeyHash(vr->gk, row.keys, row.keynulls), &row)))
			complete = false;
		MemoryContextReset(rowcxt);
	}
	MemoryContextSwitchTo(oldcxt);
	StateScanEnd(&scan);
	MemoryContextDelete(rowcxt);
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
 * IngestEnsureScalarGroup puts the one group of a view without GROUP BY in
 * the batch, so that it exists even when its source has no row.
 */
void
IngestEnsureScalarGroup(ViewRuntime *vr)
{
	if (vr->def->layout.scalar)
		(void) batch_group(vr, GroupKeyHash(vr->gk, NULL, NULL), NULL, NULL);
}

/* Step 2: compute the new state of every group; returns the stale ones' count. */
static int
compute_merged(ViewRuntime *vr)
{
	SharedView *sv = vr->shared;
	int32		size = vr->def->layout.block_size;
	int			stale = 0;
	MemoryContext oldcxt;

	if (vr->dropped)
		return 0;
	oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	LWLockAcquire(&sv->lock, LW_SHARED);
	for (LocalGroup *lg = vr->first; lg; lg = lg->next)
	{
		char	   *block = palloc(size);

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

static void
batch_reset(ViewRuntime *vr)
{
	MemoryContextReset(vr->batch_cxt);
	vr->table = NULL;
	vr->table_size = 0;
	vr->ngroups = 0;
	vr->first = vr->last = NULL;
	vr->truncated = false;
	vr->batch_rows = vr->batch_late = vr->batch_failed = 0;
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
 * IngestNoteOffset records that the view's batch goes up to offset next
 * (excluded) of a Kafka partition.
 */
void
IngestNoteOffset(ViewRuntime *vr, int32 partition, int64 next)
{
	if (partition >= vr->noffsets)
	{
		int			n = Max(partition + 1, vr->noffsets * 2);
		MemoryContext oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(vr));

		vr->next_offsets = vr->next_offsets ?
			repalloc(vr->next_offsets, sizeof(int64) * n) : palloc(sizeof(int64) * n);
		for (int p = vr->noffsets; p < n; p++)
			vr->next_offsets[p] = -1;
		vr->noffsets = n;
		MemoryContextSwitchTo(oldcxt);
	}
	if (next > vr->next_offsets[partition])
		vr->next_offsets[partition] = next;
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
			batch_reset(vr);
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
						lg->loaded_overflowed = vr->float_sums &&
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
		StoreSetOffsets(sv, vr->next_offsets, vr->noffsets);
	sv->rows_applied += vr->batch_rows;
	sv->late_rows += vr->batch_late;
	sv->failed_rows += vr->batch_failed;
	if (vr->has_watermark &&
		(!sv->has_watermark || vr->max_ts - vr->def->watermark_delay_us > sv->watermark))
	{
		sv->has_watermark = true;
		sv->watermark = vr->max_ts - vr->def->watermark_delay_us;
	}
	LWLockRelease(&sv->lock);
	MemoryContextSwitchTo(oldcxt);

	vr->last_merge_at = GetCurrentTimestamp();
	batch_reset(vr);
	for (int p = 0; p < vr->noffsets; p++)
		vr->next_offsets[p] = -1;
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
		batch_reset(vr);
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

	batch_reset(vr);
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
 * IngestBatchGroups is how many groups a batch of the view may gather
 * before it is merged, for its groups to take at most a quarter of limit
 * bytes of shared memory.
 */
uint32
IngestBatchGroups(ViewRuntime *vr, int64 limit)
{
	int64		entry = 96 + vr->def->layout.block_size;

	return (uint32) Max(64, Min(limit / 4 / entry, (int64) PG_INT32_MAX));
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
	if (resolve(vr))
	{
		PushActiveSnapshot(GetLatestSnapshot());
		load_groups(vr);
		PopActiveSnapshot();
	}
	if (compute_merged(vr) > 0)
		elog(ERROR, "flowstate backfill batch did not settle");
	return IngestMerge(vr, position);
}

static void
settle_snapshot_add(SyncSnapshot *snap)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(settle_cxt);

	settle_snaps = lappend(settle_snaps, snap);
	if (list_length(settle_snaps) > txn_seen_size)
	{
		if (txn_seen)
			pfree(txn_seen);
		txn_seen_size = Max(16, txn_seen_size * 2);
		txn_seen = MemoryContextAllocZero(TopMemoryContext, sizeof(bool) * txn_seen_size);
	}
	MemoryContextSwitchTo(oldcxt);
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
	/* a flush's transaction may be open: each round is then a subtransaction */
	bool		outer = IsTransactionState();
	MemoryContext round_cxt = NULL;
	ResourceOwner round_owner = NULL;

	if (settle_cxt == NULL)
		settle_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate settle",
										   ALLOCSET_SMALL_SIZES);

	for (;;)
	{
		bool		need_load = false;
		int			stale = 0;

		foreach(lc, views)
			need_load |= resolve(lfirst(lc));
		if (need_load)
		{
			bool		own = !IsTransactionState();

			if (own)
				StartTransactionCommand();
			PushActiveSnapshot(GetLatestSnapshot());
			foreach(lc, views)
				load_groups(lfirst(lc));
			PopActiveSnapshot();
			if (own)
				CommitTransactionCommand();
		}

		foreach(lc, views)
			stale += compute_merged(lfirst(lc));
		if (stale == 0)
			break;
		if (catch_up == NULL)
			elog(ERROR, "flowstate group cannot be recomputed from its source");

		if (snap != NULL && !reused && unseen_valid)
		{
			/* decoded up to the snapshot's end: recompute under it again */
			recompute_stale(views, snap, unseen_snap, true);
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
		settle_snapshot_add(snap);
		unseen_snap = list_length(settle_snaps) - 1;
		unseen_valid = true;
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
		recompute_stale(views, snap, unseen_snap, false);
		position = catch_up(snap->lsn);
	}
	if (snap != NULL)
	{
		SyncSnapshotDone(snap);
		round_end(outer, round_cxt, round_owner);
	}
	unseen_snap = -1;
	unseen_valid = false;

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
		batch_reset(vr);
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

	list_free(settle_snaps);
	settle_snaps = NIL;
	MemoryContextReset(settle_cxt);
	return position;
}
