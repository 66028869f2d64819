/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  Rows into the batches of continuous views.
 *
 * A source row (a decoded tuple, a backfilled one, a Kafka message) is
 * evaluated with the view's compiled defining query (projection.c) and
 * accumulated, with a sign, into the delta of its group in the view's
 * current *batch*: a backend-local hash table of the groups the batch
 * touched.  At the end of a batch the source settles it (settle.c), which
 * merges it into shared memory (merge.c).
 *
 * While a settle recomputes groups under snapshots synchronised with the
 * decoding (snapshot.c), this file keeps, for each transaction the source
 * decodes, which of those snapshots saw it (IngestTxnBegin): a group read
 * under a snapshot skips the rows of the transactions the snapshot saw, and
 * what the transactions the latest snapshot did not see change in a group
 * is kept aside (LocalGroup.unseen).
 *
 * Dead letters and late events (projection.c) are written with the next
 * flush.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

#include "engine/ingest.h"

/* The recompute snapshots of the settle under way (IngestSnapshotAdd). */
static List *snapshots = NIL;
static MemoryContext snapshots_cxt = NULL;

/* For the transaction being decoded: which of those snapshots saw it. */
static bool *txn_seen = NULL;
static int	txn_seen_size = 0;

/*
 * The settle's latest snapshot, while groups keep what the transactions it
 * did not see change in them (LocalGroup.unseen), or -1; unseen_valid is
 * cleared by a TRUNCATE or a change of a joined table (dimension.c), which
 * unseen blocks cannot express.
 */
static int	unseen_snap = -1;
static bool unseen_valid = false;
/* a transaction unseen_snap did not see was decoded since it was taken */
static bool unseen_decoded = false;

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
	vr->can_overflow = AggCanOverflow(&def->layout);
	vr->refuse_overflow = vr->float_sums && def->stream;
	for (int i = 0; i < def->layout.naggs; i++)
		if (def->layout.aggs[i].kind == AGG_SUM_FLOAT || def->layout.aggs[i].kind == AGG_AVG_FLOAT)
			vr->sum_floats[vr->nsum_floats++] = i;
	ProjectionCompile(vr);
	vr->batch_cxt = AllocSetContextCreate(cxt, "flowstate view batch", ALLOCSET_DEFAULT_SIZES);
	vr->pending_cxt = AllocSetContextCreate(cxt, "flowstate view pending rows", ALLOCSET_DEFAULT_SIZES);
	vr->last_merge_at = GetCurrentTimestamp();
	/* the watermark goes on from where the last flush left it */
	vr->has_watermark = vr->persisted_watermark = def->has_max_event_time;
	vr->max_ts = vr->persisted_max_ts = def->max_event_time;
	vr->has_durable_max_ts = def->has_max_event_time;
	vr->durable_max_ts = def->max_event_time;
	vr->has_final_ts = def->has_final_event_time;
	vr->final_ts = def->final_event_time;
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
	foreach(lc, snapshots)
		txn_seen[i++] = SyncSnapshotSees(lfirst(lc), xid, commit_lsn);
	if (unseen_snap >= 0 && !txn_seen[unseen_snap])
		unseen_decoded = true;
	DimensionTxnBegin(views);
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
accumulate(ViewRuntime *vr, char *block, int sign, bool owned)
{
	const ViewLayout *layout = &vr->def->layout;
	Datum	   *values = vr->result->tts_values;
	bool	   *isnull = vr->result->tts_isnull;

	for (int i = 0; i < layout->naggs; i++)
	{
		/* generic aggregates take rows in ProjectionAdvance */
		if (sign > 0 && layout->aggs[i].kind == AGG_GENERIC)
			continue;
		if (vr->filter_col[i] >= 0 &&
			(isnull[vr->filter_col[i]] || !DatumGetBool(values[vr->filter_col[i]])))
			continue;
		if (vr->arg_col[i] < 0)
			AggAccumulate(vr->rt, i, block, (Datum) 0, false, sign, owned);
		else
			AggAccumulate(vr->rt, i, block, values[vr->arg_col[i]],
						  isnull[vr->arg_col[i]], sign, owned);
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

/* Raise magnitude, per float sum, to the evaluated row's input. */
static void
note_magnitude(ViewRuntime *vr, double *magnitude)
{
	const ViewLayout *layout = &vr->def->layout;

	for (int k = 0; k < vr->nsum_floats; k++)
	{
		int			i = vr->sum_floats[k];
		int			col = vr->arg_col[i];

		if (!vr->result->tts_isnull[col])
			magnitude[i] = Max(magnitude[i],
							   AggInputMagnitude(layout, i, vr->result->tts_values[col]));
	}
}

/* Event time goes forward with the rows that arrive. */
/* Room in the batch's partition arrays for partition, and more. */
static void
grow_partitions(ViewRuntime *vr, int32 partition)
{
	int			n = Max(partition + 1, vr->noffsets * 2);
	MemoryContext oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(vr));

	vr->next_offsets = vr->next_offsets ?
		repalloc(vr->next_offsets, sizeof(int64) * n) : palloc(sizeof(int64) * n);
	vr->part_max_ts = vr->part_max_ts ?
		repalloc(vr->part_max_ts, sizeof(int64) * n) : palloc(sizeof(int64) * n);
	for (int p = vr->noffsets; p < n; p++)
	{
		vr->next_offsets[p] = -1;
		vr->part_max_ts[p] = PG_INT64_MIN;
	}
	vr->noffsets = n;
	MemoryContextSwitchTo(oldcxt);
}

static inline void
note_event_time(ViewRuntime *vr, int64 ts)
{
	if (!vr->has_watermark || ts > vr->max_ts)
	{
		vr->max_ts = ts;
		vr->has_watermark = true;
	}
	/* a stream's watermark goes by its partitions' event times */
	if (vr->at_message)
	{
		if (vr->msg_partition >= vr->noffsets)
			grow_partitions(vr, vr->msg_partition);
		if (ts > vr->part_max_ts[vr->msg_partition])
			vr->part_max_ts[vr->msg_partition] = ts;
	}
}

/*
 * Whether a rebuild keeps the state of the key's window, final: its rows
 * were counted or refused when they came.
 */
static inline bool
kept_final(ViewRuntime *vr, const Datum *keys, const bool *keynulls)
{
	int			keyno = vr->def->window.keyno;

	return vr->keep_final && !keynulls[keyno] && DatumGetInt64(keys[keyno]) <= vr->final_cutoff;
}

/*
 * The state a group of the batch adds its delta to: the recomputed or
 * emptied one, else what shared memory held when the batch first touched
 * the group (NULL: nothing, a new group).  A group that left shared memory
 * counts as new here, and so does every group for a worker of a stream
 * other than its owner, which holds no view of its own between merges (a
 * sum the merge finds out of range puts its group in error).
 */
static const char *
group_base(ViewRuntime *vr, LocalGroup *lg)
{
	SharedView *sv = vr->shared;
	dsa_pointer dp;

	if (lg->base)
		return lg->base;
	if (lg->stored_read || sv == NULL)
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

/*
 * Add the row just evaluated to the generic aggregates of blocks
 * (ProjectionAdvance).  When a transition fails: with group_errors, a row
 * that fails only with the group's other rows (a sum out of range) puts
 * the groups in error, as it fails the batch query, and counts; a row
 * that fails alone does not count: returns false, a dead letter if record.
 */
static bool
advance(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn, bool record, bool group_errors,
		char **blocks, int n)
{
	char	   *alone;

	if (ProjectionAdvance(vr, slot, lsn, record && !group_errors, blocks, n))
		return true;
	if (!group_errors)
		return false;
	alone = palloc0(vr->def->layout.block_size);
	if (!ProjectionAdvance(vr, slot, lsn, record, &alone, 1))
		return false;
	for (int b = 0; b < n; b++)
		AggGenericFail(&vr->def->layout, blocks[b]);
	return true;
}

/* Evaluate a row and accumulate it into its group of the batch. */
static void
ingest_row(ViewRuntime *vr, TupleTableSlot *slot, int sign, XLogRecPtr lsn, bool lateness)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	Datum		keys[FLOWSTATE_MAX_KEYS];
	bool		keynulls[FLOWSTATE_MAX_KEYS];
	LocalGroup *lg;
	bool		to_delta;
	bool		to_unseen;

	if (!ProjectionEvaluate(vr, slot, lsn, true))
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	if (sign > 0 && vr->ts_col >= 0 && !vr->result->tts_isnull[vr->ts_col])
		note_event_time(vr, DatumGetInt64(vr->result->tts_values[vr->ts_col]));
	for (int i = 0; i < vr->def->layout.nkeys; i++)
	{
		keys[i] = vr->result->tts_values[vr->key_col[i]];
		keynulls[i] = vr->result->tts_isnull[vr->key_col[i]];
	}
	if (kept_final(vr, keys, keynulls) ||
		(lateness && ProjectionIsLate(vr, slot, sign, lsn)))
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	lg = batch_group(vr, GroupKeyHash(vr->gk, keys, keynulls), keys, keynulls);
	MemoryContextSwitchTo(vr->batch_cxt);
	to_delta = lg->skip_snap < 0 || !txn_seen[lg->skip_snap];
	to_unseen = unseen_snap >= 0 && !txn_seen[unseen_snap];
	if (to_unseen && lg->unseen == NULL)
		lg->unseen = palloc0(vr->def->layout.block_size);
	if (to_delta && vr->refuse_overflow &&
		row_overflows(vr, group_base(vr, lg), lg->delta, sign))
	{
		/* a message that would overflow a float sum is refused whole */
		ProjectionRefuse(vr, slot, lsn, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
						 "value out of range: overflow");
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	if (vr->rt->has_generic && sign > 0 && (to_delta || to_unseen))
	{
		char	   *blocks[2];
		int			n = 0;

		if (to_delta)
			blocks[n++] = lg->delta;
		if (to_unseen)
			blocks[n++] = lg->unseen;
		/* a message is refused whole, a dead letter (as one that would overflow a float sum) */
		if (!advance(vr, slot, lsn, true, !vr->def->stream, blocks, n))
		{
			MemoryContextSwitchTo(oldcxt);
			return;
		}
	}
	if (to_delta)
	{
		accumulate(vr, lg->delta, sign, false);
		lg->retracted |= sign < 0;
		if (vr->float_sums)
			note_magnitude(vr, lg->magnitude);
		vr->batch_rows++;
	}
	if (to_unseen)
	{
		accumulate(vr, lg->unseen, sign, false);
		lg->unseen_retracted |= sign < 0;
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Whether a view waits for its backfill (or rebuild) to start: it will
 * read its source's rows then, these ones too.  Rows of other views'
 * backfills, decoded meanwhile, must not reach it: their dead letters and
 * late events would be recorded twice.
 */
static inline bool
awaits_backfill(ViewRuntime *vr)
{
	return vr->rebuild ||
		(vr->def->backfilling && vr->backfill_snap == NULL &&
		 vr->shared->status == VIEW_STARTING);
}

/*
 * IngestRequestRebuild asks for a view to be rebuilt from its source: the
 * rows of the source (or of a table it joins) changed in a way its deltas
 * cannot follow.  Until then the view is not waited for (wait_for) and no
 * flush passes this point of the WAL (the decoder's flush_start), so a
 * crash decodes the cause again.
 */
void
IngestRequestRebuild(ViewRuntime *vr, const char *why)
{
	/* a backfill that saw this transaction read its rows already */
	if (vr->rebuild || vr->dropped || vr->skip_txn)
		return;
	vr->rebuild = true;
	LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
	vr->shared->status = VIEW_STARTING;
	LWLockRelease(&vr->shared->lock);
	ereport(LOG,
			(errmsg("flowstate rebuilds continuous view \"%s\": %s",
					vr->def->view_name, why)));
}

/*
 * IngestRow adds (sign +1) or removes (sign -1) a source row of a view, as
 * of the WAL position lsn.
 */
void
IngestRow(ViewRuntime *vr, TupleTableSlot *slot, int sign, XLogRecPtr lsn)
{
	if (vr->skip_txn || vr->dropped || awaits_backfill(vr))
		return;
	ingest_row(vr, slot, sign, lsn, true);
	/* a row that joins a row of the dimension changed in this settle */
	if (vr->lookup != NULL && !vr->def->stream)
		DimensionFactRow(vr, slot);
}

/*
 * IngestMarkStale makes the group of keys stale in the batch: the settle
 * recomputes it from the source (dimension.c).
 */
void
IngestMarkStale(ViewRuntime *vr, const Datum *keys, const bool *keynulls)
{
	LocalGroup *lg = batch_group(vr, GroupKeyHash(vr->gk, keys, keynulls), keys, keynulls);

	lg->dirty = true;
	lg->merged = NULL;
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

/*
 * IngestAccumulateRow adds (sign +1) or removes (sign -1) the row just
 * evaluated to a delta block whose values are its own (no other block
 * points to them: the values it replaces are freed), by-reference values in
 * CurrentMemoryContext; and, for a view with float sums, raises magnitude
 * to its inputs.
 */
bool
IngestAccumulateRow(ViewRuntime *vr, TupleTableSlot *slot, char *block, int sign,
					double *magnitude)
{
	if (vr->rt->has_generic && sign > 0 &&
		!ProjectionAdvance(vr, slot, InvalidXLogRecPtr, false, &block, 1))
		return false;
	accumulate(vr, block, sign, true);
	note_magnitude(vr, magnitude);
	return true;
}

/*
 * IngestMergeDelta adds to the batch what a transaction, gathered while it
 * was open (open_txn.c), changes in one group: as if its rows came now,
 * which is when it commits.  nrows is how many rows the delta holds.
 */
void
IngestMergeDelta(ViewRuntime *vr, const Datum *keys, const bool *keynulls,
				 const char *delta, bool retracted, const double *magnitude, int64 nrows)
{
	MemoryContext oldcxt;
	LocalGroup *lg;

	if (vr->skip_txn || vr->dropped || awaits_backfill(vr))
		return;
	if (kept_final(vr, keys, keynulls))
		return;
	lg = batch_group(vr, GroupKeyHash(vr->gk, keys, keynulls), keys, keynulls);
	oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	if (lg->skip_snap < 0 || !txn_seen[lg->skip_snap])
	{
		AggCombine(vr->rt, lg->delta, delta);
		lg->retracted |= retracted;
		if (vr->float_sums)
			for (int i = 0; i < vr->def->layout.naggs; i++)
				lg->magnitude[i] = Max(lg->magnitude[i], magnitude[i]);
		vr->batch_rows += nrows;
	}
	if (unseen_snap >= 0 && !txn_seen[unseen_snap])
	{
		if (lg->unseen == NULL)
			lg->unseen = palloc0(vr->def->layout.block_size);
		AggCombine(vr->rt, lg->unseen, delta);
		lg->unseen_retracted |= retracted;
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * IngestNoteEventTime makes the watermark of a view go forward to ts, the
 * largest event time of rows a transaction added.
 */
void
IngestNoteEventTime(ViewRuntime *vr, int64 ts)
{
	if (vr->skip_txn || vr->dropped)
		return;
	note_event_time(vr, ts);
}

void
IngestAccumulate(ViewRuntime *vr, TupleTableSlot *slot, char *block)
{
	MemoryContext oldcxt;

	oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	/* (a row failing alone was a dead letter when it came: not again) */
	if (!vr->rt->has_generic || advance(vr, slot, InvalidXLogRecPtr, false, true, &block, 1))
		accumulate(vr, block, 1, false);
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

/*
 * IngestBatchReset empties the batch of a view, once merged or given up.
 */
void
IngestBatchReset(ViewRuntime *vr)
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
 * IngestNoteOffset records that the view's batch goes up to offset next
 * (excluded) of a Kafka partition.
 */
void
IngestNoteOffset(ViewRuntime *vr, int32 partition, int64 next)
{
	if (partition >= vr->noffsets)
		grow_partitions(vr, partition);
	if (next > vr->next_offsets[partition])
		vr->next_offsets[partition] = next;
}

/*
 * IngestRefreshDurable brings a view over a stream, from its groups in
 * shared memory sv, the event time its last committed flush recorded
 * (whichever worker flushed), for the rows it judges from now on.  With
 * batch_empty (nothing applied is waiting to be merged), worker records
 * that its batches judge with it from now on; the least over the stream's
 * workers is the watermark readers see (flowstate.views, is_final): no
 * worker may still apply a row to a window final by it.
 */
void
IngestRefreshDurable(ViewRuntime *vr, SharedView *sv, int worker, bool batch_empty)
{
	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	if (sv->has_durable_max_ts &&
		(!vr->has_durable_max_ts || sv->durable_max_ts > vr->durable_max_ts))
	{
		vr->has_durable_max_ts = true;
		vr->durable_max_ts = sv->durable_max_ts;
	}
	if (batch_empty && vr->has_durable_max_ts && worker < STORE_MAX_STREAM_WORKERS)
		sv->judged[worker] = vr->durable_max_ts;
	if (sv->stream_workers > 0)
	{
		int64		least = PG_INT64_MAX;

		for (int i = 0; i < Min(sv->stream_workers, STORE_MAX_STREAM_WORKERS); i++)
			least = Min(least, sv->judged[i]);
		if (least != PG_INT64_MIN &&
			(!sv->has_watermark || least - vr->def->watermark_delay_us > sv->watermark))
		{
			sv->has_watermark = true;
			sv->watermark = least - vr->def->watermark_delay_us;
		}
	}
	LWLockRelease(&sv->lock);
}

/*
 * IngestBatchGroups is how many groups a batch of the view may gather
 * before it is merged, for its groups to take at most a quarter of limit
 * bytes of shared memory.
 */
uint32
IngestBatchGroups(ViewRuntime *vr, int64 limit)
{
	int64		entry = 96 + vr->def->layout.shared_size;

	return (uint32) Max(64, Min(limit / 4 / entry, (int64) PG_INT32_MAX));
}

/*
 * IngestSnapshotAdd makes snap the settle's latest recompute snapshot: from
 * the next transaction on, the source's rows are checked against it, and
 * what the transactions it did not see change is kept aside.  Returns its
 * number, which groups recomputed under it keep in skip_snap.
 */
int
IngestSnapshotAdd(SyncSnapshot *snap)
{
	MemoryContext oldcxt;

	if (snapshots_cxt == NULL)
		snapshots_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate settle snapshots",
											  ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(snapshots_cxt);
	snapshots = lappend(snapshots, snap);
	MemoryContextSwitchTo(oldcxt);
	if (list_length(snapshots) > txn_seen_size)
	{
		if (txn_seen)
			pfree(txn_seen);
		txn_seen_size = Max(16, txn_seen_size * 2);
		txn_seen = MemoryContextAllocZero(TopMemoryContext, sizeof(bool) * txn_seen_size);
	}
	unseen_snap = list_length(snapshots) - 1;
	unseen_valid = true;
	unseen_decoded = false;
	return unseen_snap;
}

/*
 * IngestUnseenValid tells whether the groups still hold what the
 * transactions the latest snapshot did not see changed in them (no
 * TRUNCATE since).
 */
bool
IngestUnseenValid(void)
{
	return unseen_valid;
}

/*
 * IngestUnseenChange: the transaction being decoded changed what unseen
 * blocks cannot express (a row of a dimension): if the settle's latest
 * snapshot did not see it, the groups need a new one.
 */
void
IngestUnseenChange(void)
{
	/*
	 * Also when an earlier transaction was not seen: its rows, kept aside,
	 * joined the row as it was before this change, which the snapshot
	 * sees.
	 */
	if (unseen_snap >= 0 && (unseen_decoded || !txn_seen[unseen_snap]))
		unseen_valid = false;
}

/*
 * IngestSnapshotsEnd forgets the settle's snapshots: it is over.
 */
void
IngestSnapshotsEnd(void)
{
	snapshots = NIL;
	unseen_snap = -1;
	unseen_valid = false;
	if (snapshots_cxt)
		MemoryContextReset(snapshots_cxt);
}
