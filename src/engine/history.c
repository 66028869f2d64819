/*-------------------------------------------------------------------------
 *
 * history.c
 *	  SCD type-2 histories of tables (flowstate.create_history): each key of
 *	  the source gets one row per version in the history table, with
 *	  valid_from, valid_to, is_current and version.
 *
 * The decoding worker hands over each change of a source (HistoryChange),
 * kept per transaction until its commit.  At the commit the changes of a
 * transaction collapse to one per key, the state the transaction left
 * (HistoryCommit): a version per committed state of a key, stamped with
 * the commit time.  A flush takes what committed up to its position
 * (HistoryFlushBegin) and writes it in its own transaction, the one that
 * advances the replication origin (HistoryFlushWrite): a crash replays
 * exactly what the history misses.
 *
 * The versions themselves are written by history_writer.c.  A history
 * whose write fails (its table changed by hand) is marked failed with the
 * reason, in the flush's transaction; the other histories and the views go
 * on.  So is one the decoder cannot follow (HistoryFail: its source's old
 * rows no longer logged whole, the slot found missing).
 *
 * A new history starts from the rows of its source, version 1 each, read
 * under a snapshot synchronised with the decoding (HistoryBackfill); the
 * transactions that snapshot saw are then skipped for it, as for a view's
 * backfill.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "engine/history_internal.h"

/* a change decoded in a transaction not committed yet */
typedef struct OpenChange
{
	int32		history_id;
	TransactionId subxid;
	HistoryChangeKind kind;
	Datum	   *values;
	bool	   *nulls;
	char	   *key;			/* the key's text, to collapse per key */
	int			seq;
} OpenChange;

typedef struct OpenTxnChanges
{
	TransactionId xid;
	MemoryContext cxt;
	List	   *changes;		/* OpenChange */
} OpenTxnChanges;

/* changes a flush writes with one set of statements, at most */
#define HISTORY_BATCH	10000

/* transactions being decoded, by xid */
static HTAB *open_txns = NULL;
static MemoryContext history_cxt = NULL;

typedef struct FlushItem
{
	HistoryRuntime *h;
	List	   *entries;
	MemoryContext entries_cxt;
	bool		record_running;
	bool		locked;			/* its catalog row, by this flush */
	bool		recorded_failure;	/* why the decoder failed it */
	int			next;			/* the next entry to write */
	int64		written;
	TimestampTz last_change;
	int64	   *offsets;		/* a stream's: the next offsets it reached */
	int			noffsets;
} FlushItem;

struct HistoryFlush
{
	int			n;
	int			current;		/* the history being written */
	FlushItem  *items;
};

int32
HistoryId(HistoryRuntime *h)
{
	return h->id;
}

Oid
HistorySource(HistoryRuntime *h)
{
	return h->source;
}

Oid
HistoryTable(HistoryRuntime *h)
{
	return h->relid;
}

/* Whether the history waits for its backfill to read the source. */
bool
HistoryWantsBackfill(HistoryRuntime *h)
{
	return h->backfill_wanted && !h->failed;
}

/* Whether the changes of its source go to the history. */
bool
HistoryActive(HistoryRuntime *h)
{
	return !h->failed && !h->backfill_wanted;
}

/* ---------------------------------------------------------------------
 * The catalog
 * --------------------------------------------------------------------- */

static char **
text_array(Datum d, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = TextDatumGetCString(elems[i]);
	return out;
}

/* Mark a history failed in the catalog, with why; runs in a transaction, under SPI. */
static void
record_failure(int32 id, const char *why)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		args[2] = {Int32GetDatum(id), CStringGetTextDatum(why)};

	if (SPI_execute_with_args("UPDATE flowstate.history SET status = 'failed', last_error = $2"
							  " WHERE history_id = $1", 2, types, args, NULL, false, 0) < 0)
		elog(ERROR, "could not update flowstate.history");
}

/* A history whose source lost what it keeps: recorded failed, and not started. */
static HistoryRuntime *
give_up(HistoryRuntime *h, const char *why)
{
	ereport(WARNING,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("history %s is no longer kept: %s", h->name, why),
			 errhint("Drop the history and create it again.")));
	record_failure(h->id, why);
	MemoryContextDelete(h->cxt);
	return NULL;
}

/*
 * Set a history up from its catalog row; returns NULL (and marks it failed)
 * if its source no longer has its columns.
 */
static HistoryRuntime *
start_history(HeapTuple tup, TupleDesc desc, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "flowstate history", ALLOCSET_SMALL_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	HistoryRuntime *h = palloc0(sizeof(HistoryRuntime));
	bool		isnull;
	char	  **key,
			  **tracked,
			  **type1;
	Relation	rel;
	char	   *policy;

	h->cxt = cxt;
	h->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	h->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
	h->source = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
	key = text_array(SPI_getbinval(tup, desc, 4, &isnull), &h->nkey);
	tracked = text_array(SPI_getbinval(tup, desc, 5, &isnull), &h->ntracked);
	type1 = text_array(SPI_getbinval(tup, desc, 6, &isnull), &h->ntype1);
	policy = TextDatumGetCString(SPI_getbinval(tup, desc, 7, &isnull));
	h->on_delete = policy[0];
	h->truncate_closes = strcmp(TextDatumGetCString(SPI_getbinval(tup, desc, 8, &isnull)), "close") == 0;
	h->backfilling = strcmp(TextDatumGetCString(SPI_getbinval(tup, desc, 9, &isnull)), "backfilling") == 0;
	h->backfill_wanted = h->backfilling;
	h->name = TextDatumGetCString(SPI_getbinval(tup, desc, 10, &isnull));
	h->source_name = TextDatumGetCString(SPI_getbinval(tup, desc, 11, &isnull));
	h->pending_cxt = AllocSetContextCreate(cxt, "flowstate history changes", ALLOCSET_DEFAULT_SIZES);
	if (!heap_attisnull(tup, 14, desc))
	{
		char	   *seq = SPI_getvalue(tup, desc, 12);
		char	   *del = SPI_getvalue(tup, desc, 13);

		h->stream = true;
		h->changes = SPI_getvalue(tup, desc, 14);
		h->sequence_att = seq ? get_attnum(h->source, seq) : 0;
		h->delete_att = del ? get_attnum(h->source, del) : 0;
		/* gone: the history fails below */
		if (h->sequence_att == InvalidAttrNumber && seq != NULL)
			h->sequence_att = -1;
		if (h->delete_att == InvalidAttrNumber && del != NULL)
			h->delete_att = -1;
	}

	h->ncols = h->nkey + h->ntracked + h->ntype1;
	h->colnames = palloc(sizeof(char *) * h->ncols);
	h->attnums = palloc(sizeof(AttrNumber) * h->ncols);
	h->types = palloc(sizeof(Oid) * h->ncols);
	h->collations = palloc(sizeof(Oid) * h->ncols);
	h->typlens = palloc(sizeof(int16) * h->ncols);
	h->typbyvals = palloc(sizeof(bool) * h->ncols);
	h->eq = palloc0(sizeof(FmgrInfo) * h->ncols);
	h->out = palloc0(sizeof(FmgrInfo) * h->ncols);
	h->arraytypes = palloc(sizeof(Oid) * h->ncols);
	h->typaligns = palloc(h->ncols);
	for (int i = 0; i < h->ncols; i++)
		h->colnames[i] = i < h->nkey ? key[i] :
			i < h->nkey + h->ntracked ? tracked[i - h->nkey] : type1[i - h->nkey - h->ntracked];

	rel = try_table_open(h->source, AccessShareLock);
	for (int i = 0; i < h->ncols && rel != NULL; i++)
	{
		AttrNumber	att = get_attnum(h->source, h->colnames[i]);
		Form_pg_attribute a;

		if (att == InvalidAttrNumber ||
			!OidIsValid(get_array_type(TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid)))
		{
			char	   *why = att == InvalidAttrNumber ?
				psprintf("column \"%s\" of %s is gone", h->colnames[i], h->source_name) :
				psprintf("the type of column \"%s\" of %s has no array type", h->colnames[i], h->source_name);

			table_close(rel, AccessShareLock);
			MemoryContextSwitchTo(oldcxt);
			return give_up(h, why);
		}
		a = TupleDescAttr(RelationGetDescr(rel), att - 1);
		h->attnums[i] = att;
		h->types[i] = a->atttypid;
		h->collations[i] = a->attcollation;
		h->typlens[i] = a->attlen;
		h->typbyvals[i] = a->attbyval;
		h->arraytypes[i] = get_array_type(a->atttypid);
		h->typaligns[i] = a->attalign;
		if (i < h->nkey)
		{
			Oid			outfn;
			bool		varlena;

			getTypeOutputInfo(a->atttypid, &outfn, &varlena);
			fmgr_info_cxt(outfn, &h->out[i], cxt);
		}
		else
		{
			TypeCacheEntry *tc = lookup_type_cache(a->atttypid, TYPECACHE_EQ_OPR_FINFO);

			if (OidIsValid(tc->eq_opr_finfo.fn_oid))
				fmgr_info_cxt(tc->eq_opr_finfo.fn_oid, &h->eq[i], cxt);
		}
	}
	if (rel == NULL)
	{
		/* the source is being dropped: so is the history, by the event trigger */
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(cxt);
		return NULL;
	}
	table_close(rel, AccessShareLock);
	MemoryContextSwitchTo(oldcxt);
	if (h->sequence_att < 0 || h->delete_att < 0)
		return give_up(h, psprintf("the %s column of stream %s is gone",
								   h->sequence_att < 0 ? "sequence" : "delete", h->source_name));
	if (h->stream)
		HistoryStreamReadOffsets(h);
	return h;
}

/* Whether flowstate.history has the columns of streams' histories (0.10.0); connected to SPI. */
static bool
catalog_has_streams(void)
{
	return SPI_execute("SELECT 1 FROM pg_catalog.pg_attribute"
					   " WHERE attrelid = 'flowstate.history'::pg_catalog.regclass"
					   "   AND attname = 'changes' AND NOT attisdropped", true, 0) == SPI_OK_SELECT &&
		SPI_processed == 1;
}

/*
 * HistoryReadCatalog compares the catalog with the running histories:
 * keeps those still there, starts new ones, stops dropped or failed ones:
 * the histories of tables (stream InvalidOid), or those of a stream.  Runs
 * in a transaction; returns the histories now running.
 */
List *
HistoryReadCatalog(List *running, MemoryContext cxt, Oid stream)
{
	List	   *keep = NIL;
	ListCell   *lc;
	bool		streams;

	if (history_cxt == NULL)
		history_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate histories",
											ALLOCSET_DEFAULT_SIZES);
	SPI_connect();
	/* a catalog not updated to 0.9.0 yet has no histories to keep, 0.10.0 no stream's */
	streams = catalog_has_streams();
	if (HistoryCatalogReady() && (streams || !OidIsValid(stream)) &&
		SPI_execute_with_args(psprintf("SELECT h.history_id, h.history::oid, h.source::oid,"
									   "       h.key_columns::text[], h.tracked_columns::text[],"
									   "       h.type1_columns::text[], h.delete_policy, h.truncate_policy,"
									   "       h.status, h.history::text, h.source::text, %s"
									   "  FROM flowstate.history h JOIN pg_catalog.pg_class c ON c.oid = h.source"
									   " WHERE h.status <> 'failed' AND h.history IS NOT NULL"
									   "   AND (CASE WHEN $1 = 0 THEN c.relkind = 'r' ELSE c.oid = $1 END)"
									   " ORDER BY h.history_id",
									   streams ? "h.sequence_column, h.delete_column, h.changes::text" :
									   "NULL::name, NULL::name, NULL::text"),
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(stream)},
							  NULL, false, 0) == SPI_OK_SELECT)
	{
		SPITupleTable *tt = SPI_tuptable;
		uint64		n = SPI_processed;

		for (uint64 r = 0; r < n; r++)
		{
			HeapTuple	tup = tt->vals[r];
			bool		isnull;
			int32		id = DatumGetInt32(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
			Oid			relid = DatumGetObjectId(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
			HistoryRuntime *h = NULL;
			MemoryContext oldcxt;

			foreach(lc, running)
			{
				HistoryRuntime *r2 = lfirst(lc);

				if (r2->id == id && r2->relid == relid && !r2->failed)
					h = r2;
			}
			if (h == NULL)
				h = start_history(tup, tt->tupdesc, history_cxt);
			if (h == NULL)
				continue;
			oldcxt = MemoryContextSwitchTo(cxt);
			keep = lappend(keep, h);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	SPI_finish();

	foreach(lc, running)
	{
		if (!list_member_ptr(keep, lfirst(lc)))
			{
			HistoryFreePlans(lfirst(lc));
			MemoryContextDelete(((HistoryRuntime *) lfirst(lc))->cxt);
		}
	}
	return keep;
}

/*
 * HistorySignature: the histories of a stream as the catalog has them, to
 * notice a change (NULL if none).  Runs in a transaction.
 */
char *
HistorySignature(Oid stream)
{
	char	   *sig = NULL;

	SPI_connect();
	if (HistoryCatalogReady() && catalog_has_streams() &&
		SPI_execute_with_args("SELECT string_agg(history_id || ':' || history::oid, ',' ORDER BY history_id)"
							  "  FROM flowstate.history WHERE source = $1 AND status <> 'failed'",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(stream)},
							  NULL, true, 0) == SPI_OK_SELECT)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v != NULL)
			sig = SPI_palloc(strlen(v) + 1), strcpy(sig, v);
	}
	SPI_finish();
	return sig;
}

/*
 * HistoryCatalogReady tells whether flowstate.history has the columns of
 * histories (an extension not updated to 0.9.0 yet has none to keep).
 * Runs connected to SPI.
 */
bool
HistoryCatalogReady(void)
{
	return SPI_execute("SELECT 1 FROM pg_catalog.pg_attribute"
					   " WHERE attrelid = 'flowstate.history'::pg_catalog.regclass"
					   "   AND attname = 'status' AND NOT attisdropped", true, 0) == SPI_OK_SELECT &&
		SPI_processed == 1;
}

/*
 * HistoryAny tells whether the database has histories of tables (the
 * decoder keeps its slot for them).  Runs in a transaction.
 */
bool
HistoryAny(void)
{
	bool		any;

	SPI_connect();
	any = SPI_execute("SELECT 1 FROM flowstate.history h JOIN pg_catalog.pg_class c ON c.oid = h.source"
					  " WHERE c.relkind = 'r' LIMIT 1", true, 0) == SPI_OK_SELECT &&
		SPI_processed > 0;
	SPI_finish();
	return any;
}

/* ---------------------------------------------------------------------
 * Backfill
 * --------------------------------------------------------------------- */

/*
 * HistoryBackfill starts a history over: its table emptied, then version 1
 * of every row of the source the snapshot sees, valid from now.  Runs in
 * the transaction that took the snapshot; the decoder then decodes up to
 * where it stops, skipping for this history what it saw
 * (HistoryBackfillCaughtUp once there).
 */
void
HistoryBackfill(HistoryRuntime *h, SyncSnapshot *snap)
{
	TimestampTz now = GetCurrentTimestamp();
	char	   *cols = HistoryColumnList(h);
	SPIPlanPtr	plan;
	Oid			types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		args[2] = {TimestampTzGetDatum(now), Int32GetDatum(h->id)};
	Relation	source = try_table_open(h->source, AccessShareLock);
	Relation	table = source ? try_table_open(h->relid, AccessExclusiveLock) : NULL;

	/* dropped meanwhile (its catalog entry went with it): nothing to keep */
	if (table == NULL)
	{
		if (source != NULL)
			table_close(source, AccessShareLock);
		h->backfill_wanted = false;
		h->failed = true;
		return;
	}
	table_close(source, NoLock);
	table_close(table, NoLock);
	SPI_connect();
	if (SPI_execute(psprintf("TRUNCATE %s", h->name), false, 0) < 0)
		elog(ERROR, "could not empty history %s", h->name);
	CommandCounterIncrement();
	plan = SPI_prepare(psprintf("INSERT INTO %s (%s, valid_from, version) SELECT %s, $1, 1 FROM ONLY %s",
								h->name, cols, cols, h->source_name), 1, types);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, args, NULL, snap->snapshot, InvalidSnapshot,
							 false, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not backfill history %s", h->name);
	if (SPI_execute_with_args("UPDATE flowstate.history SET started_at = $1,"
							  " versions_written = $3, last_change = NULL, last_error = NULL"
							  " WHERE history_id = $2",
							  3, (Oid[]) {TIMESTAMPTZOID, INT4OID, INT8OID},
							  (Datum[]) {args[0], args[1], Int64GetDatum((int64) SPI_processed)},
							  NULL, false, 0) < 0)
		elog(ERROR, "could not update flowstate.history");
	SPI_finish();
	ereport(LOG,
			(errmsg("flowstate backfilled history %s", h->name)));

	/* what committed before is in the table; from here on, what it missed */
	MemoryContextReset(h->pending_cxt);
	h->pending = NIL;
	h->snap = snap;
	h->backfill_wanted = false;
}

/* HistoryBackfillCaughtUp: decoding reached where the backfill's snapshot stops. */
void
HistoryBackfillCaughtUp(HistoryRuntime *h)
{
	h->snap = NULL;
	h->caught_up = true;
}

/* ---------------------------------------------------------------------
 * Changes, kept per transaction until its commit
 * --------------------------------------------------------------------- */

static OpenTxnChanges *
open_txn(TransactionId xid, bool create)
{
	OpenTxnChanges *t;
	bool		found;

	if (open_txns == NULL)
	{
		HASHCTL		hctl;

		if (!create)
			return NULL;
		if (history_cxt == NULL)
			history_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate histories",
												ALLOCSET_DEFAULT_SIZES);
		hctl.keysize = sizeof(TransactionId);
		hctl.entrysize = sizeof(OpenTxnChanges);
		hctl.hcxt = history_cxt;
		open_txns = hash_create("flowstate history transactions", 16, &hctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	t = hash_search(open_txns, &xid, create ? HASH_ENTER : HASH_FIND, &found);
	if (t != NULL && !found)
	{
		t->cxt = AllocSetContextCreate(history_cxt, "flowstate history transaction",
									   ALLOCSET_DEFAULT_SIZES);
		t->changes = NIL;
	}
	return t;
}

static void
forget_txn(OpenTxnChanges *t)
{
	TransactionId xid = t->xid;

	MemoryContextDelete(t->cxt);
	hash_search(open_txns, &xid, HASH_REMOVE, NULL);
}

/* HistoryCopyValue: a value of the row, whole (a decoded row's values live only as long as the change). */
Datum
HistoryCopyValue(HistoryRuntime *h, int i, Datum d)
{
	if (h->typlens[i] == -1 && VARATT_IS_EXTERNAL(DatumGetPointer(d)))
		return PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(d)));
	return datumCopy(d, h->typbyvals[i], h->typlens[i]);
}

/* HistoryKeyText: the text of a key, to tell keys apart within a transaction or a batch. */
char *
HistoryKeyText(HistoryRuntime *h, Datum *values, bool *nulls)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int i = 0; i < h->nkey; i++)
	{
		char	   *v = nulls[i] ? "" : OutputFunctionCall(&h->out[i], values[i]);

		appendStringInfo(&s, "%d:%zu:%s", nulls[i] ? 0 : 1, strlen(v), v);
	}
	return s.data;
}

/* Whether an UPDATE from before to after changed the key. */
static bool
key_changed(HistoryRuntime *h, TupleTableSlot *before, TupleTableSlot *after)
{
	for (int i = 0; i < h->nkey; i++)
	{
		bool		bnull,
					anull;
		Datum		b = slot_getattr(before, h->attnums[i], &bnull);
		Datum		a = slot_getattr(after, h->attnums[i], &anull);

		if (bnull != anull ||
			(!bnull && !datum_image_eq(b, a, h->typbyvals[i], h->typlens[i])))
			return true;
	}
	return false;
}

/*
 * HistoryChange keeps a change of the history's source, made by
 * subtransaction subxid of transaction xid, until the transaction commits:
 * an UPSERT (an INSERT, or an UPDATE from before) leaves the row after; a
 * DELETE removes the row before.  An UPDATE of the key deletes the old key.
 */
void
HistoryChange(HistoryRuntime *h, TransactionId xid, TransactionId subxid,
			  HistoryChangeKind kind, TupleTableSlot *before, TupleTableSlot *after)
{
	OpenTxnChanges *t;
	MemoryContext oldcxt;
	OpenChange *c;
	TupleTableSlot *row = kind == HISTORY_DELETE ? before : after;

	if (!HistoryActive(h))
		return;
	if (kind == HISTORY_UPSERT && before != NULL && key_changed(h, before, after))
		HistoryChange(h, xid, subxid, HISTORY_DELETE, before, NULL);
	t = open_txn(xid, true);
	oldcxt = MemoryContextSwitchTo(t->cxt);
	c = palloc0(sizeof(OpenChange));
	c->history_id = h->id;
	c->subxid = subxid;
	c->kind = kind;
	c->seq = list_length(t->changes);
	if (kind != HISTORY_TRUNCATE)
	{
		c->values = palloc(sizeof(Datum) * h->ncols);
		c->nulls = palloc(sizeof(bool) * h->ncols);
		for (int i = 0; i < h->ncols; i++)
		{
			Datum		d = slot_getattr(row, h->attnums[i], &c->nulls[i]);

			c->values[i] = c->nulls[i] ? (Datum) 0 : HistoryCopyValue(h, i, d);
		}
		c->key = HistoryKeyText(h, c->values, c->nulls);
	}
	t->changes = lappend(t->changes, c);
	MemoryContextSwitchTo(oldcxt);
}

static int
change_cmp(const ListCell *a, const ListCell *b)
{
	const OpenChange *x = lfirst(a);
	const OpenChange *y = lfirst(b);
	int			c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* A committed change of h, in its pending list. */
static void
add_entry(HistoryRuntime *h, HistoryChangeKind kind, TimestampTz ts, OpenChange *c)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(h->pending_cxt);
	HistoryEntry *e = palloc0(sizeof(HistoryEntry));

	e->kind = kind;
	e->ts = ts;
	if (c != NULL)
	{
		e->key = pstrdup(c->key);
		e->values = palloc(sizeof(Datum) * h->ncols);
		e->nulls = palloc(sizeof(bool) * h->ncols);
		for (int i = 0; i < h->ncols; i++)
		{
			e->nulls[i] = c->nulls[i];
			e->values[i] = c->nulls[i] ? (Datum) 0 :
				datumCopy(c->values[i], h->typbyvals[i], h->typlens[i]);
		}
	}
	h->pending = lappend(h->pending, e);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * HistoryCommit: transaction xid committed at commit_lsn, at commit_time.
 * Its changes go to each history's pending list, one per key: the state
 * the transaction left it in (after a TRUNCATE, if it made one, which goes
 * first).  A history whose backfill's snapshot saw the transaction skips it.
 */
void
HistoryCommit(List *histories, TransactionId xid, XLogRecPtr commit_lsn,
			  TimestampTz commit_time)
{
	OpenTxnChanges *t = open_txn(xid, false);
	ListCell   *lh;

	if (t == NULL)
		return;
	foreach(lh, histories)
	{
		HistoryRuntime *h = lfirst(lh);
		List	   *mine = NIL;
		bool		truncated = false;
		ListCell   *lc;

		if (!HistoryActive(h) ||
			(h->snap != NULL && SyncSnapshotSees(h->snap, xid, commit_lsn)))
			continue;
		foreach(lc, t->changes)
		{
			OpenChange *c = lfirst(lc);

			if (c->history_id != h->id)
				continue;
			if (c->kind == HISTORY_TRUNCATE)
			{
				/* what came before it is gone with it */
				list_free(mine);
				mine = NIL;
				truncated = true;
			}
			else
				mine = lappend(mine, c);
		}
		if (truncated)
			add_entry(h, HISTORY_TRUNCATE, commit_time, NULL);
		list_sort(mine, change_cmp);
		foreach(lc, mine)
		{
			OpenChange *c = lfirst(lc);
			OpenChange *next = lnext(mine, lc) ? lfirst(lnext(mine, lc)) : NULL;

			/* the last change of each key is the state the transaction left */
			if (next == NULL || strcmp(next->key, c->key) != 0)
				add_entry(h, c->kind, commit_time, c);
		}
		list_free(mine);
	}
	forget_txn(t);
}

/*
 * HistoryAbort: a transaction decoded while in progress rolled back, or
 * one of its subtransactions (subxid) did: its changes go.
 */
void
HistoryAbort(TransactionId xid, TransactionId subxid)
{
	OpenTxnChanges *t = open_txn(xid, false);
	List	   *kept = NIL;
	ListCell   *lc;

	if (t == NULL)
		return;
	if (!TransactionIdIsValid(subxid) || subxid == xid)
	{
		forget_txn(t);
		return;
	}
	foreach(lc, t->changes)
	{
		OpenChange *c = lfirst(lc);

		if (c->subxid != subxid)
			kept = lappend(kept, c);
	}
	list_free(t->changes);
	t->changes = kept;
}

/* HistoryForgetOpen drops every transaction not committed yet (the worker stops). */
void
HistoryForgetOpen(void)
{
	if (open_txns == NULL)
		return;
	hash_destroy(open_txns);
	open_txns = NULL;
	if (history_cxt != NULL)
		MemoryContextReset(history_cxt);
}

/*
 * HistoryFail: the history cannot follow its source any more (its old rows
 * are no longer logged).  The next flush records why; nothing is written
 * into it from then on.
 */
void
HistoryFail(HistoryRuntime *h, const char *why)
{
	MemoryContext oldcxt;

	if (h->failed)
		return;
	ereport(WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("history %s is no longer kept: %s", h->name, why),
			 errhint("Fix the cause, then drop the history and create it again.")));
	h->failed = true;
	/* the changes it had are dropped; the next flush records why */
	MemoryContextReset(h->pending_cxt);
	h->pending = NIL;
	oldcxt = MemoryContextSwitchTo(h->cxt);
	h->failure = pstrdup(why);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * HistoryFlushBegin takes, for a flush, what each history must write:
 * the changes committed up to the flush's position, a backfill caught up,
 * a failure.  Returns NULL if there is nothing.
 */
HistoryFlush *
HistoryFlushBegin(List *histories, MemoryContext cxt)
{
	HistoryFlush *f = NULL;
	ListCell   *lc;

	foreach(lc, histories)
	{
		HistoryRuntime *h = lfirst(lc);
		FlushItem  *item;

		if (h->pending == NIL && !h->caught_up && h->failure == NULL && !h->offsets_moved)
			continue;
		if (f == NULL)
		{
			f = MemoryContextAllocZero(cxt, sizeof(HistoryFlush));
			f->items = MemoryContextAllocZero(cxt, sizeof(FlushItem) * list_length(histories));
		}
		item = &f->items[f->n++];
		item->h = h;
		item->entries = h->pending;
		item->record_running = h->caught_up && !h->failed;
		if (h->stream && h->offsets_moved)
		{
			/* what its table will hold is the messages up to these */
			item->offsets = MemoryContextAlloc(cxt, sizeof(int64) * Max(h->nnext, 1));
			memcpy(item->offsets, h->next, sizeof(int64) * h->nnext);
			item->noffsets = h->nnext;
			h->offsets_moved = false;
		}
		if (!h->failed)
		{
			item->entries_cxt = h->pending_cxt;
			h->pending_cxt = AllocSetContextCreate(h->cxt, "flowstate history changes",
												   ALLOCSET_DEFAULT_SIZES);
		}
		h->pending = NIL;
	}
	return f;
}

/*
 * Write one history's changes for about budget_ms (all if negative);
 * returns true once all are written.  On failure, record it and go on
 * without it.
 */
static bool
write_history(FlushItem *item, TimestampTz start, int budget_ms)
{
	HistoryRuntime *h = item->h;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool done = false;

	/*
	 * Its catalog row first, as drop_history takes it before the table: a
	 * history dropped meanwhile has none, and nothing is written.
	 */
	if (!item->locked)
	{
		if (SPI_execute_with_args("SELECT 1 FROM flowstate.history WHERE history_id = $1 FOR UPDATE",
								  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(h->id)},
								  NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock flowstate.history");
		if (SPI_processed == 0)
		{
			item->record_running = false;
			return true;
		}
		item->locked = true;
		if (h->failure != NULL)
		{
			/* the reason HistoryFail kept */
			record_failure(h->id, h->failure);
			item->recorded_failure = true;
			return true;
		}
	}
	if (h->failed)
		return true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		int			n = list_length(item->entries);

		if (item->next == 0)
			HistoryCheckOwner(h);
		while (item->next < n)
		{
			HistoryEntry *e = list_nth(item->entries, item->next);
			int			end = item->next + 1;

			if (e->kind == HISTORY_TRUNCATE)
				HistoryWriteTruncate(h, e->ts);
			else
			{
				/* up to the next TRUNCATE, in batches of set-based statements */
				while (end < n && end - item->next < HISTORY_BATCH &&
					   ((HistoryEntry *) list_nth(item->entries, end))->kind != HISTORY_TRUNCATE)
					end++;
				item->written += h->stream ?
					HistoryWriteStreamBatch(h, item->entries, item->next, end) :
					HistoryWriteBatch(h, item->entries, item->next, end);
			}
			for (int j = item->next; j < end; j++)
				item->last_change = Max(item->last_change,
										((HistoryEntry *) list_nth(item->entries, j))->ts);
			item->next = end;
			CommandCounterIncrement();
			if (budget_ms >= 0 &&
				TimestampDifferenceExceeds(start, GetCurrentTimestamp(), budget_ms))
				break;
		}
		done = item->next == n;
		if (done && item->offsets != NULL)
			HistoryStreamWriteOffsets(h, item->offsets, item->noffsets);
		if (done &&
			SPI_execute_with_args("UPDATE flowstate.history"
								  "   SET versions_written = versions_written + $2,"
								  "       last_change = CASE WHEN $4 THEN $3 ELSE last_change END,"
								  "       status = CASE WHEN $5 THEN 'running' ELSE status END"
								  " WHERE history_id = $1",
								  5, (Oid[]) {INT4OID, INT8OID, TIMESTAMPTZOID, BOOLOID, BOOLOID},
								  (Datum[]) {Int32GetDatum(h->id), Int64GetDatum(item->written),
									  TimestampTzGetDatum(item->last_change),
									  BoolGetDatum(item->entries != NIL),
								  BoolGetDatum(item->record_running)},
								  NULL, false, 0) < 0)
			elog(ERROR, "could not update flowstate.history");
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = owner;
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("history %s is no longer kept: %s", h->name, edata->message),
				 errhint("Fix the cause, then drop the history and create it again.")));
		h->failed = true;
		item->record_running = false;
		record_failure(h->id, edata->message);
		FreeErrorData(edata);
		done = true;
	}
	PG_END_TRY();
	return done;
}

/*
 * HistoryFlushWrite writes the histories' changes, in order, in the
 * flush's transaction (under its snapshot), for about budget_ms
 * milliseconds since start (all of them if negative); returns true once
 * all are written.  Between two calls the worker goes on decoding.
 */
bool
HistoryFlushWrite(HistoryFlush *f, TimestampTz start, int budget_ms)
{
	if (f == NULL)
		return true;
	SPI_connect();
	while (f->current < f->n)
	{
		if (!write_history(&f->items[f->current], start, budget_ms))
		{
			SPI_finish();
			return false;
		}
		f->current++;
	}
	SPI_finish();
	return true;
}

/* HistoryFlushEnd: the flush committed. */
void
HistoryFlushEnd(HistoryFlush *f)
{
	if (f == NULL)
		return;
	for (int i = 0; i < f->n; i++)
	{
		FlushItem  *item = &f->items[i];

		if (item->record_running)
		{
			item->h->caught_up = false;
			item->h->backfilling = false;
		}
		if (item->entries_cxt != NULL)
			MemoryContextDelete(item->entries_cxt);
		if (item->recorded_failure)
		{
			pfree(item->h->failure);
			item->h->failure = NULL;
		}
	}
}
