/*-------------------------------------------------------------------------
 *
 * open_txn.c
 *	  What transactions still in progress change in continuous views.
 *
 * A source that streams large transactions before they commit (logical
 * decoding of in-progress transactions: sources/decoding) hands their rows
 * here instead of to the batch.  Each row is evaluated at once and
 * pre-aggregated aside, per transaction, per view, per subtransaction,
 * into a delta of its group; nothing reaches the views before the commit.
 *
 *	- At the commit (OpenTxnCommit) the deltas are added to the batch as if
 *	  the transaction's rows came then, which is when a transaction decoded
 *	  whole would have brought them: the same decisions per group (which
 *	  recompute snapshot saw the transaction, what the settle keeps of the
 *	  transactions it did not see: ingest.c), the same watermark.
 *	- A subtransaction rolled back (OpenTxnAbort) loses exactly its own
 *	  deltas, which are kept apart from the others' for that; a transaction
 *	  rolled back loses everything.
 *	- Rows whose order matters are kept whole and applied one by one at
 *	  the commit: those of views with final windows, whose lateness depends
 *	  on the rows before, and rows whose evaluation failed, which become
 *	  dead letters only if their transaction commits.
 *	  Rows kept whole are copied out of the reorder buffer with every column
 *	  (defaults of columns added since) and their large values; they are
 *	  evaluated at the commit, under the catalog and a snapshot of then.
 *	- A change deltas cannot follow (a TRUNCATE, partitions attached or
 *	  detached, a table that stops logging old rows) and a view that started
 *	  while the transaction was open, over a table it changed (its earlier
 *	  rows were not gathered for it), make the view rebuild from its table
 *	  once the transaction has committed.
 *
 * Memory: the deltas of all open transactions take at most
 * flowstate.open_transaction_memory; past it, the largest transaction's are
 * written to a temporary file (as block images: state_format.c) and
 * memory starts over; the commit reads the file back before what is left in
 * memory.  Dead letters are not kept here: a failed row is kept whole, and
 * fails again at the commit.
 *
 * Everything lives in the worker's process: a worker that restarts decodes
 * the open transactions again from its slot's restart point.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "catalog/partition.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "storage/buffile.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "engine/open_txn.h"
#include "guc.h"

/* A group a (sub)transaction changes, and how. */
typedef struct TxnGroup
{
	uint32		hash;			/* of the key and subxid */
	TransactionId subxid;
	Datum	   *values;
	bool	   *isnull;
	char	   *delta;
	double	   *magnitude;		/* views with float sums */
	int64		nrows;
	bool		retracted;
} TxnGroup;

/* A row kept whole, applied at the commit. */
typedef struct TxnRow
{
	TransactionId subxid;
	int			sign;
	XLogRecPtr	lsn;
	MinimalTuple tuple;
} TxnRow;

/* What a transaction does to one view. */
typedef struct TxnView
{
	int32		view_id;
	Oid			state_relid;
	ViewRuntime *vr;			/* while streaming; found again at the commit */
	bool		whole_rows;		/* every row kept whole: final windows */
	TupleDesc	desc;			/* of the rows kept whole */
	bool		rebuild;		/* the view rebuilds after the commit */
	bool		has_ts;			/* largest event time of rows added */
	int64		max_ts;
	/* in the transaction's data context, emptied by a spill: */
	TxnGroup  **table;
	uint32		table_size;
	uint32		ngroups;
	List	   *rows;			/* TxnRow */
} TxnView;

struct OpenTxn
{
	TransactionId xid;			/* hash key */
	MemoryContext meta;			/* this struct, views, aborted */
	MemoryContext data;			/* groups and rows */
	List	   *views;			/* TxnView */
	int			nknown;			/* the views running when it started */
	int32	   *known_ids;
	Oid		   *known_relids;
	HTAB	   *aborted;		/* subtransactions rolled back, or NULL */
	List	   *relids;			/* the tables it changed (OIDs), NIL: none */
	Oid			last_relid;		/* ... the last one */
	BufFile    *spill;			/* what left memory, or NULL */
	int64		spilled;
};

/* Header of a record of a spill file. */
typedef struct SpillRecord
{
	uint32		len;			/* bytes after the header */
	int32		view_id;
	Oid			state_relid;
	TransactionId subxid;
	int32		kind;			/* 'G' group, 'R' row */
	int32		sign;			/* R: the row's sign */
	int64		nrows;			/* G: rows of the delta; R: its lsn */
	int32		retracted;		/* G */
	uint32		keylen;			/* G: flat key, then the block image */
} SpillRecord;

static MemoryContext open_cxt = NULL;
static HTAB *open_txns = NULL;
static OpenTxnStats stats;
static uint32 rows_since_check = 0;

/* Rows between two looks at the memory the open transactions take. */
#define CHECK_EVERY_ROWS 1024

static void
ensure_table(void)
{
	HASHCTL		hctl;

	if (open_txns != NULL)
		return;
	open_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate open transactions",
									 ALLOCSET_DEFAULT_SIZES);
	hctl.keysize = sizeof(TransactionId);
	hctl.entrysize = sizeof(OpenTxn);
	hctl.hcxt = open_cxt;
	open_txns = hash_create("flowstate open transactions", 16, &hctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * OpenTxnStart is called as a source starts streaming a part of
 * transaction xid; views are those it feeds now.  Returns the transaction.
 */
OpenTxn *
OpenTxnStart(TransactionId xid, List *views)
{
	OpenTxn    *txn;
	bool		found;
	ListCell   *lc;
	int			i = 0;

	ensure_table();
	txn = hash_search(open_txns, &xid, HASH_ENTER, &found);
	if (found)
		return txn;
	txn->meta = AllocSetContextCreate(open_cxt, "flowstate open transaction",
									  ALLOCSET_SMALL_SIZES);
	txn->data = AllocSetContextCreate(txn->meta, "flowstate open transaction deltas",
									  ALLOCSET_DEFAULT_SIZES);
	txn->views = NIL;
	txn->aborted = NULL;
	txn->relids = NIL;
	txn->last_relid = InvalidOid;
	txn->spill = NULL;
	txn->spilled = 0;
	txn->nknown = list_length(views);
	txn->known_ids = MemoryContextAlloc(txn->meta, sizeof(int32) * Max(txn->nknown, 1));
	txn->known_relids = MemoryContextAlloc(txn->meta, sizeof(Oid) * Max(txn->nknown, 1));
	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);

		txn->known_ids[i] = vr->def->view_id;
		txn->known_relids[i++] = vr->def->state_relid;
	}
	stats.open = hash_get_num_entries(open_txns);
	return txn;
}

/* OpenTxnFind returns the open transaction xid, or NULL. */
OpenTxn *
OpenTxnFind(TransactionId xid)
{
	if (open_txns == NULL)
		return NULL;
	return hash_search(open_txns, &xid, HASH_FIND, NULL);
}

/* OpenTxnTouch notes that the transaction changed table relid. */
void
OpenTxnTouch(OpenTxn *txn, Oid relid)
{
	MemoryContext oldcxt;

	if (relid == txn->last_relid || list_member_oid(txn->relids, relid))
	{
		txn->last_relid = relid;
		return;
	}
	oldcxt = MemoryContextSwitchTo(txn->meta);
	txn->relids = lappend_oid(txn->relids, relid);
	MemoryContextSwitchTo(oldcxt);
	txn->last_relid = relid;
}

static void
forget(OpenTxn *txn)
{
	TransactionId xid = txn->xid;

	if (txn->spill)
		BufFileClose(txn->spill);
	MemoryContextDelete(txn->meta);
	hash_search(open_txns, &xid, HASH_REMOVE, NULL);
	stats.open = hash_get_num_entries(open_txns);
	OpenTxnStop();
}

static TxnView *
txn_view(OpenTxn *txn, ViewRuntime *vr)
{
	ListCell   *lc;
	TxnView    *tv;
	ViewDef    *def = vr->def;

	foreach(lc, txn->views)
	{
		tv = lfirst(lc);
		if (tv->view_id == def->view_id && tv->state_relid == def->state_relid)
		{
			tv->vr = vr;
			return tv;
		}
	}
	tv = MemoryContextAllocZero(txn->meta, sizeof(TxnView));
	tv->view_id = def->view_id;
	tv->state_relid = def->state_relid;
	tv->vr = vr;
	/* lateness depends on the rows before: keep the rows, in order */
	tv->whole_rows = def->allowed_lateness_us >= 0 && def->window.size_us > 0 && vr->ts_col >= 0;
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(txn->meta);

		txn->views = lappend(txn->views, tv);
		MemoryContextSwitchTo(oldcxt);
	}
	return tv;
}

static bool
aborted(OpenTxn *txn, TransactionId subxid)
{
	return txn->aborted != NULL && hash_search(txn->aborted, &subxid, HASH_FIND, NULL) != NULL;
}

/* Whether rows of desc can be read with tv_desc. */
static bool
same_row_type(TupleDesc tv_desc, TupleDesc desc)
{
	if (tv_desc->natts != desc->natts)
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(tv_desc, i);
		Form_pg_attribute b = TupleDescAttr(desc, i);

		if (a->atttypid != b->atttypid || a->attisdropped != b->attisdropped ||
			a->atttypmod != b->atttypmod)
			return false;
	}
	return true;
}

/*
 * A row of slot as a minimal tuple that outlives the change: every column
 * present (those added since the row was written take their default), and
 * large values that the reorder buffer rebuilt in its own memory (indirect
 * toast pointers, freed after the change) copied in.
 */
static MinimalTuple
copy_row(TupleTableSlot *slot)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;
	Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	MinimalTuple tuple;

	slot_getallattrs(slot);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		values[i] = slot->tts_values[i];
		if (att->attlen == -1 && !slot->tts_isnull[i] &&
			VARATT_IS_EXTERNAL_INDIRECT(DatumGetPointer(values[i])))
			values[i] = PointerGetDatum(detoast_external_attr((struct varlena *)
															  DatumGetPointer(values[i])));
	}
	tuple = heap_form_minimal_tuple(desc, values, slot->tts_isnull);
	pfree(values);
	return tuple;
}

/* Keep a row whole, to apply it at the commit. */
static void
keep_row(OpenTxn *txn, TxnView *tv, TransactionId subxid, TupleTableSlot *slot,
		 int sign, XLogRecPtr lsn)
{
	MemoryContext oldcxt;
	TxnRow	   *row;
	TupleDesc	desc = slot->tts_tupleDescriptor;

	if (tv->desc == NULL)
	{
		oldcxt = MemoryContextSwitchTo(txn->meta);
		tv->desc = CreateTupleDescCopy(desc);
		MemoryContextSwitchTo(oldcxt);
	}
	else if (!same_row_type(tv->desc, desc))
	{
		/* the table changed its columns in the transaction */
		tv->rebuild = true;
		return;
	}
	oldcxt = MemoryContextSwitchTo(txn->data);
	row = palloc(sizeof(TxnRow));
	row->subxid = subxid;
	row->sign = sign;
	row->lsn = lsn;
	row->tuple = copy_row(slot);
	tv->rows = lappend(tv->rows, row);
	MemoryContextSwitchTo(oldcxt);
}

/* The group of key (values, isnull) that subtransaction subxid changes. */
static TxnGroup *
txn_group(OpenTxn *txn, TxnView *tv, TransactionId subxid,
		  const Datum *values, const bool *isnull)
{
	ViewRuntime *vr = tv->vr;
	const ViewLayout *layout = &vr->def->layout;
	uint32		hash = hash_combine(GroupKeyHash(vr->gk, values, isnull), murmurhash32(subxid));
	uint32		mask;
	uint32		i;
	TxnGroup   *g;
	MemoryContext oldcxt;

	if (tv->table == NULL || tv->ngroups * 2 >= tv->table_size)
	{
		uint32		newsize = tv->table == NULL ? 64 : tv->table_size * 2;
		TxnGroup  **newtable = MemoryContextAllocZero(txn->data, sizeof(TxnGroup *) * newsize);

		for (uint32 j = 0; tv->table && j < tv->table_size; j++)
		{
			if ((g = tv->table[j]) == NULL)
				continue;
			for (i = g->hash & (newsize - 1); newtable[i]; i = (i + 1) & (newsize - 1))
				;
			newtable[i] = g;
		}
		if (tv->table)
			pfree(tv->table);
		tv->table = newtable;
		tv->table_size = newsize;
	}
	mask = tv->table_size - 1;
	for (i = hash & mask; tv->table[i]; i = (i + 1) & mask)
	{
		g = tv->table[i];
		if (g->hash == hash && g->subxid == subxid &&
			GroupKeyEqual(vr->gk, g->values, g->isnull, values, isnull))
			return g;
	}

	oldcxt = MemoryContextSwitchTo(txn->data);
	g = palloc0(sizeof(TxnGroup));
	g->hash = hash;
	g->subxid = subxid;
	g->values = palloc(sizeof(Datum) * Max(layout->nkeys, 1));
	g->isnull = palloc(sizeof(bool) * Max(layout->nkeys, 1));
	for (int k = 0; k < layout->nkeys; k++)
	{
		g->isnull[k] = isnull[k];
		g->values[k] = isnull[k] ? (Datum) 0 :
			datumCopy(values[k], layout->keys[k].typbyval, layout->keys[k].typlen);
	}
	g->delta = palloc0(layout->block_size);
	if (vr->float_sums)
		g->magnitude = palloc0(sizeof(double) * layout->naggs);
	MemoryContextSwitchTo(oldcxt);
	tv->table[i] = g;
	tv->ngroups++;
	return g;
}

/*
 * OpenTxnRow adds (sign +1) or removes (sign -1) a row that subtransaction
 * subxid of the open transaction changed in a view's source.
 */
void
OpenTxnRow(OpenTxn *txn, TransactionId subxid, ViewRuntime *vr,
		   TupleTableSlot *slot, int sign, XLogRecPtr lsn)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	TxnView    *tv;
	TxnGroup   *g;
	Datum		keys[FLOWSTATE_MAX_KEYS];
	bool		keynulls[FLOWSTATE_MAX_KEYS];

	if (vr->dropped)
		return;
	tv = txn_view(txn, vr);
	if (tv->rebuild)
		return;
	if (tv->whole_rows)
		keep_row(txn, tv, subxid, slot, sign, lsn);
	else if (!ProjectionEvaluate(vr, slot, lsn, false))
	{
		MemoryContextSwitchTo(oldcxt);
		/* evaluated again at the commit: a dead letter if it fails then */
		if (vr->last_failed)
			keep_row(txn, tv, subxid, slot, sign, lsn);
	}
	else
	{
		MemoryContextSwitchTo(oldcxt);
		if (sign > 0 && vr->ts_col >= 0 && !vr->result->tts_isnull[vr->ts_col])
		{
			int64		ts = DatumGetInt64(vr->result->tts_values[vr->ts_col]);

			if (!tv->has_ts || ts > tv->max_ts)
				tv->max_ts = ts;
			tv->has_ts = true;
		}
		for (int i = 0; i < vr->def->layout.nkeys; i++)
		{
			keys[i] = vr->result->tts_values[vr->key_col[i]];
			keynulls[i] = vr->result->tts_isnull[vr->key_col[i]];
		}
		g = txn_group(txn, tv, subxid, keys, keynulls);
		MemoryContextSwitchTo(txn->data);
		if (IngestAccumulateRow(vr, slot, g->delta, sign, g->magnitude))
		{
			MemoryContextSwitchTo(oldcxt);
			g->nrows++;
			g->retracted |= sign < 0;
		}
		else
		{
			/* a transition failed: evaluated again at the commit */
			MemoryContextSwitchTo(oldcxt);
			keep_row(txn, tv, subxid, slot, sign, lsn);
		}
	}
	if (++rows_since_check >= CHECK_EVERY_ROWS)
		OpenTxnStop();
}

/*
 * OpenTxnRebuild notes that the transaction changes the rows of a view in
 * a way deltas cannot follow: the view rebuilds once it has committed.
 */
void
OpenTxnRebuild(OpenTxn *txn, ViewRuntime *vr)
{
	txn_view(txn, vr)->rebuild = true;
}

/* Append a record to the transaction's spill file. */
static void
spill_write(OpenTxn *txn, SpillRecord *rec, const void *a, Size alen, const void *b, Size blen)
{
	MemoryContext oldcxt;

	if (txn->spill == NULL)
	{
		oldcxt = MemoryContextSwitchTo(txn->meta);
		txn->spill = BufFileCreateTemp(true);
		MemoryContextSwitchTo(oldcxt);
	}
	rec->len = alen + blen;
	BufFileWrite(txn->spill, rec, sizeof(SpillRecord));
	if (alen > 0)
		BufFileWrite(txn->spill, (void *) a, alen);
	if (blen > 0)
		BufFileWrite(txn->spill, (void *) b, blen);
	txn->spilled += sizeof(SpillRecord) + alen + blen;
	stats.spilled_bytes += sizeof(SpillRecord) + alen + blen;
}

/*
 * Write what a transaction holds in memory to its spill file, and empty
 * its memory.
 */
static void
spill(OpenTxn *txn)
{
	ListCell   *lc;

	foreach(lc, txn->views)
	{
		TxnView    *tv = lfirst(lc);
		ViewRuntime *vr = tv->vr;
		const ViewLayout *layout;
		SpillRecord rec;
		ListCell   *lr;

		if (vr == NULL)
		{
			/* its view stopped: nothing to keep */
			tv->rebuild = true;
			tv->table = NULL;
			tv->table_size = tv->ngroups = 0;
			tv->rows = NIL;
			continue;
		}
		layout = &vr->def->layout;
		memset(&rec, 0, sizeof(rec));
		rec.view_id = tv->view_id;
		rec.state_relid = tv->state_relid;
		for (uint32 i = 0; !tv->rebuild && tv->table && i < tv->table_size; i++)
		{
			TxnGroup   *g = tv->table[i];
			StringInfoData buf;
			bytea	   *image;

			if (g == NULL || aborted(txn, g->subxid))
				continue;
			initStringInfo(&buf);
			rec.keylen = GroupKeySize(layout, g->values, g->isnull);
			enlargeStringInfo(&buf, rec.keylen);
			GroupKeyWrite(layout, g->values, g->isnull, buf.data);
			buf.len = rec.keylen;
			if (vr->float_sums)
				appendBinaryStringInfo(&buf, (char *) g->magnitude, sizeof(double) * layout->naggs);
			image = AggSerializeImage(layout, g->delta);
			rec.kind = 'G';
			rec.subxid = g->subxid;
			rec.nrows = g->nrows;
			rec.retracted = g->retracted;
			spill_write(txn, &rec, buf.data, buf.len, VARDATA(image), VARSIZE(image) - VARHDRSZ);
			pfree(image);
			pfree(buf.data);
		}
		foreach(lr, tv->rows)
		{
			TxnRow	   *row = lfirst(lr);

			if (tv->rebuild || aborted(txn, row->subxid))
				continue;
			rec.kind = 'R';
			rec.subxid = row->subxid;
			rec.sign = row->sign;
			rec.nrows = (int64) row->lsn;
			rec.keylen = 0;
			spill_write(txn, &rec, row->tuple, row->tuple->t_len, NULL, 0);
		}
		tv->table = NULL;
		tv->table_size = tv->ngroups = 0;
		tv->rows = NIL;
	}
	MemoryContextReset(txn->data);
}

/*
 * OpenTxnStop is called as a source stops streaming a part of a
 * transaction, and every so many rows: while the open transactions take
 * more memory than flowstate.open_transaction_memory, the largest one's
 * deltas go to a temporary file.
 */
void
OpenTxnStop(void)
{
	int64		limit = (int64) flowstate_open_transaction_memory * 1024;

	rows_since_check = 0;
	if (open_txns == NULL)
		return;
	for (;;)
	{
		HASH_SEQ_STATUS seq;
		OpenTxn    *txn;
		OpenTxn    *largest = NULL;
		int64		largest_bytes = 0;
		int64		total = 0;

		hash_seq_init(&seq, open_txns);
		while ((txn = hash_seq_search(&seq)) != NULL)
		{
			int64		bytes = MemoryContextMemAllocated(txn->data, false);

			total += bytes;
			if (bytes > largest_bytes)
			{
				largest = txn;
				largest_bytes = bytes;
			}
		}
		stats.bytes = total;
		stats.peak_bytes = Max(stats.peak_bytes, total);
		if (total <= limit || largest == NULL || largest_bytes <= ALLOCSET_DEFAULT_INITSIZE)
			break;
		spill(largest);
	}
}

/* The view of a record of the spill file, or NULL if it is not applied. */
static TxnView *
record_view(OpenTxn *txn, const SpillRecord *rec)
{
	ListCell   *lc;

	foreach(lc, txn->views)
	{
		TxnView    *tv = lfirst(lc);

		if (tv->view_id == rec->view_id && tv->state_relid == rec->state_relid)
			return (tv->vr == NULL || tv->rebuild || aborted(txn, rec->subxid)) ? NULL : tv;
	}
	return NULL;
}

static void
apply_row(TxnView *tv, TupleTableSlot *slot, MinimalTuple tuple, int sign, XLogRecPtr lsn)
{
	ExecStoreMinimalTuple(tuple, slot, false);
	IngestRow(tv->vr, slot, sign, lsn);
	ExecClearTuple(slot);
}

/* Apply the records of the transaction's spill file, in their order. */
static void
apply_spill(OpenTxn *txn, TupleTableSlot **slots)
{
	SpillRecord rec;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate spilled record",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

	if (BufFileSeek(txn->spill, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind the temporary file of an open transaction: %m")));
	while (BufFileRead(txn->spill, &rec, sizeof(rec)) == sizeof(rec))
	{
		char	   *data = palloc(Max(rec.len, 1));
		TxnView    *tv;

		if (BufFileRead(txn->spill, data, rec.len) != rec.len)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read the temporary file of an open transaction: %m")));
		tv = record_view(txn, &rec);
		if (tv != NULL && rec.kind == 'R')
		{
			int			n = 0;
			ListCell   *lc;

			foreach(lc, txn->views)
			{
				if (lfirst(lc) == tv)
					n = foreach_current_index(lc);
			}
			apply_row(tv, slots[n], (MinimalTuple) data, rec.sign, (XLogRecPtr) rec.nrows);
		}
		else if (tv != NULL && rec.kind == 'G')
		{
			const ViewLayout *layout = &tv->vr->def->layout;
			Datum		keys[FLOWSTATE_MAX_KEYS];
			bool		keynulls[FLOWSTATE_MAX_KEYS];
			char	   *block = palloc(layout->block_size);
			Size		extra = tv->vr->float_sums ? sizeof(double) * layout->naggs : 0;
			double	   *magnitude = NULL;
			const char *problem;

			GroupKeyRead(layout, data, keys, keynulls);
			if (extra > 0)
			{
				magnitude = palloc(extra);
				memcpy(magnitude, data + rec.keylen, extra);
			}
			problem = AggDecodeImage(layout, data + rec.keylen + extra,
									 rec.len - rec.keylen - extra, block);
			if (problem)
				elog(ERROR, "temporary file of an open transaction: %s", problem);
			IngestMergeDelta(tv->vr, keys, keynulls, block, rec.retracted != 0, magnitude,
							 rec.nrows);
		}
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/* Whether a view was running when the transaction started. */
static bool
known(OpenTxn *txn, ViewRuntime *vr)
{
	for (int i = 0; i < txn->nknown; i++)
		if (txn->known_ids[i] == vr->def->view_id && txn->known_relids[i] == vr->def->state_relid)
			return true;
	return false;
}

/*
 * Whether the transaction changed the source of a view: the table, or a
 * partition below it.  Reads the catalog.
 */
static bool
changed_source(OpenTxn *txn, ViewRuntime *vr)
{
	ListCell   *lc;

	foreach(lc, txn->relids)
	{
		Oid			relid = lfirst_oid(lc);

		if (relid == vr->def->source_relid ||
			(get_rel_relispartition(relid) &&
			 list_member_oid(get_partition_ancestors(relid), vr->def->source_relid)))
			return true;
	}
	return false;
}

/*
 * OpenTxnCommit adds what the transaction changed to the batches of views,
 * the views the source feeds now, as of its commit at commit_lsn.  Appends
 * to *rebuild the views whose rows it changed as deltas cannot follow, to
 * *missed those that started while it was open: both must rebuild.  Returns whether the
 * transaction changed a table.  The transaction is forgotten.
 */
bool
OpenTxnCommit(OpenTxn *txn, List *views, XLogRecPtr commit_lsn, List **rebuild,
			  List **missed)
{
	ListCell   *lc;
	bool		changed = txn->relids != NIL;
	TupleTableSlot **slots = palloc0(sizeof(TupleTableSlot *) * Max(list_length(txn->views), 1));
	int			n = 0;

	IngestTxnBegin(views, txn->xid, commit_lsn);

	/* the views the transaction changed, as the source feeds them now */
	foreach(lc, txn->views)
	{
		TxnView    *tv = lfirst(lc);
		ListCell   *lv;

		tv->vr = NULL;
		foreach(lv, views)
		{
			ViewRuntime *vr = lfirst(lv);

			/* a view started meanwhile rebuilds instead (below) */
			if (vr->def->view_id == tv->view_id && vr->def->state_relid == tv->state_relid &&
				!vr->skip_txn && !vr->dropped && known(txn, vr))
				tv->vr = vr;
		}
		if (tv->vr != NULL && tv->rebuild)
			*rebuild = lappend(*rebuild, tv->vr);
		if (tv->desc != NULL)
			slots[foreach_current_index(lc)] = MakeSingleTupleTableSlot(tv->desc,
																		&TTSOpsMinimalTuple);
	}

	/* first what went to the spill file, then what is in memory */
	if (txn->spill)
		apply_spill(txn, slots);
	foreach(lc, txn->views)
	{
		TxnView    *tv = lfirst(lc);
		ListCell   *lr;

		n = foreach_current_index(lc);
		if (tv->vr == NULL || tv->rebuild)
		{
			if (slots[n])
				ExecDropSingleTupleTableSlot(slots[n]);
			continue;
		}
		for (uint32 i = 0; tv->table && i < tv->table_size; i++)
		{
			TxnGroup   *g = tv->table[i];

			if (g != NULL && !aborted(txn, g->subxid))
				IngestMergeDelta(tv->vr, g->values, g->isnull, g->delta, g->retracted,
								 g->magnitude, g->nrows);
		}
		foreach(lr, tv->rows)
		{
			TxnRow	   *row = lfirst(lr);

			if (!aborted(txn, row->subxid))
				apply_row(tv, slots[n], row->tuple, row->sign, row->lsn);
		}
		if (tv->has_ts)
			IngestNoteEventTime(tv->vr, tv->max_ts);
		if (slots[n])
			ExecDropSingleTupleTableSlot(slots[n]);
	}

	/* a view started meanwhile missed the rows before, if it reads them */
	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (!vr->skip_txn && !vr->dropped && !known(txn, vr) && changed_source(txn, vr))
			*missed = lappend(*missed, vr);
	}
	pfree(slots);
	forget(txn);
	stats.committed++;
	return changed;
}

/*
 * OpenTxnAbort forgets what subtransaction subxid of transaction xid
 * changed, or the whole transaction when subxid is xid.
 */
void
OpenTxnAbort(TransactionId xid, TransactionId subxid)
{
	OpenTxn    *txn = OpenTxnFind(xid);

	if (txn == NULL)
		return;
	if (subxid == xid)
	{
		forget(txn);
		return;
	}
	if (txn->aborted == NULL)
	{
		HASHCTL		hctl;

		hctl.keysize = sizeof(TransactionId);
		hctl.entrysize = sizeof(TransactionId);
		hctl.hcxt = txn->meta;
		txn->aborted = hash_create("flowstate aborted subtransactions", 16, &hctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	(void) hash_search(txn->aborted, &subxid, HASH_ENTER, NULL);
}

/*
 * OpenTxnViewsChanged is called when the views a source feeds changed:
 * the open transactions forget the views that stopped.
 */
void
OpenTxnViewsChanged(List *views)
{
	HASH_SEQ_STATUS seq;
	OpenTxn    *txn;

	if (open_txns == NULL)
		return;
	hash_seq_init(&seq, open_txns);
	while ((txn = hash_seq_search(&seq)) != NULL)
	{
		ListCell   *lc;

		foreach(lc, txn->views)
		{
			TxnView    *tv = lfirst(lc);

			if (tv->vr != NULL && !list_member_ptr(views, tv->vr))
				tv->vr = NULL;
		}
	}
}

/* OpenTxnForgetAll forgets every open transaction (decoding starts over). */
void
OpenTxnForgetAll(void)
{
	HASH_SEQ_STATUS seq;
	OpenTxn    *txn;

	if (open_txns == NULL)
		return;
	hash_seq_init(&seq, open_txns);
	while ((txn = hash_seq_search(&seq)) != NULL)
	{
		if (txn->spill)
			BufFileClose(txn->spill);
		MemoryContextDelete(txn->meta);
	}
	hash_destroy(open_txns);
	open_txns = NULL;
	MemoryContextDelete(open_cxt);
	open_cxt = NULL;
	stats.open = 0;
	stats.bytes = 0;
}

/* OpenTxnGetStats tells what the open transactions hold. */
void
OpenTxnGetStats(OpenTxnStats *out)
{
	*out = stats;
}
