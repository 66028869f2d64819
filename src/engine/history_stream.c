/*-------------------------------------------------------------------------
 *
 * history_stream.c
 *	  Histories of Kafka streams: each message is the whole state of its
 *	  key (an upsert) or deletes it (a message without value, or whose
 *	  delete column is true), at the time its sequence column says (by
 *	  default the message's timestamp).  Versions follow that time, not the
 *	  order messages arrive in.
 *
 * The worker of the stream hands each message over (HistoryStreamMessage)
 * with its partition and offset; the history keeps, per partition, the
 * next offset it has to read, written with its versions in the flush's
 * transaction (flowstate.history_offsets): after a crash the worker reads
 * again exactly the messages the history misses.
 *
 * A stream's history keeps the messages it was built from in a table of
 * its own (<name>_changes: key, tracked and type-1 values, changed_at,
 * is_delete, and arrival, an identity that breaks ties of changed_at in
 * the order of arrival).  A batch of messages is written so:
 *	- the messages go into the changes table;
 *	- a key whose messages of the batch all come at or after its latest
 *	  message so far is in order: its messages (sorted by changed_at, then
 *	  arrival) act on its current version as a table's changes do
 *	  (history_writer.c);
 *	- a key with a message older than its latest is out of order: it is
 *	  cut at the version that message falls into (or the last before it),
 *	  its versions from there deleted and the one ending there made
 *	  current again, and its messages from there act on it in sequence,
 *	  by the same code.
 * Either way a key's versions are those its messages give in sequence
 * (the state at a cut is what the messages before it left: the versions
 * before it, the last one open if it ended there), whatever the order
 * they came in: a message that comes late is spliced
 * into the history, the versions around it cut where it begins and ends.
 * No-op messages (tracked values unchanged) open no version but stay in
 * the changes table, where a later splice between two of them finds them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "engine/history_internal.h"

/* the rank of the messages handed over, for ties of their sequence values */
static int64 message_rank = 0;

/* ---------------------------------------------------------------------
 * Offsets
 * --------------------------------------------------------------------- */

static void
grow(HistoryRuntime *h, int n)
{
	MemoryContext oldcxt;

	if (n <= h->nnext)
		return;
	oldcxt = MemoryContextSwitchTo(h->cxt);
	h->next = h->next ? repalloc(h->next, sizeof(int64) * n) : palloc(sizeof(int64) * n);
	for (int p = h->nnext; p < n; p++)
		h->next[p] = -1;
	h->nnext = n;
	MemoryContextSwitchTo(oldcxt);
}

/* HistoryStreamReadOffsets: where the history is, as its table has it; in a transaction. */
void
HistoryStreamReadOffsets(HistoryRuntime *h)
{
	SPI_connect();
	if (SPI_execute_with_args("SELECT \"partition\", next_offset FROM flowstate.history_offsets"
							  " WHERE history_id = $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(h->id)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.history_offsets");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int32		p = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));

		grow(h, p + 1);
		h->next[p] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
}

/* HistoryStreamWriteOffsets records next[0..n-1] (those known); connected to SPI. */
void
HistoryStreamWriteOffsets(HistoryRuntime *h, int64 *next, int n)
{
	Datum	   *parts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *offsets = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc0(sizeof(bool) * Max(n, 1));
	int			k = 0;

	for (int p = 0; p < n; p++)
	{
		if (next[p] < 0)
			continue;
		parts[k] = Int32GetDatum(p);
		offsets[k++] = Int64GetDatum(next[p]);
	}
	if (k == 0)
		return;
	if (SPI_execute_with_args("INSERT INTO flowstate.history_offsets AS o (history_id, \"partition\", next_offset)"
							  " SELECT $1, u.p, u.o FROM unnest($2::int4[], $3::int8[]) AS u(p, o)"
							  " ON CONFLICT (history_id, \"partition\")"
							  " DO UPDATE SET next_offset = EXCLUDED.next_offset",
							  3, (Oid[]) {INT4OID, INT4ARRAYOID, INT8ARRAYOID},
							  (Datum[]) {Int32GetDatum(h->id),
								  HistoryArray(h, -1, INT4OID, parts, nulls, k),
							  PointerGetDatum(construct_array(offsets, k, INT8OID, sizeof(int64),
															  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write flowstate.history_offsets");
}

/*
 * HistoryStreamStart: the history's next offset in partition p; one not
 * known yet becomes start, when start is one (the stream's beginning or
 * end, as the worker found it).
 */
int64
HistoryStreamStart(HistoryRuntime *h, int32 partition, int64 start)
{
	grow(h, partition + 1);
	if (h->next[partition] < 0 && start >= 0)
	{
		h->next[partition] = start;
		h->offsets_moved = true;
	}
	return h->next[partition];
}

/* HistoryStreamWants: whether the history has not read the message at offset of partition yet. */
bool
HistoryStreamWants(HistoryRuntime *h, int32 partition, int64 offset)
{
	if (h->failed)
		return false;
	grow(h, partition + 1);
	return offset >= h->next[partition];
}

/* HistoryStreamUnflushed: whether a history has read messages no flush has recorded. */
bool
HistoryStreamUnflushed(List *histories)
{
	ListCell   *lc;

	foreach(lc, histories)
	{
		HistoryRuntime *h = lfirst(lc);

		if (!h->failed && (h->pending != NIL || h->offsets_moved))
			return true;
	}
	return false;
}

/*
 * HistoryStreamMessage hands the message at offset of partition over to
 * the history (the decoded row, NULL if the stream refused the message;
 * no_value: a message without value, whose row holds only what its key
 * and metadata give).  Returns false, with why
 * in *error, if the history cannot take it (its key or sequence value
 * missing): the caller records the message as a dead letter.  Either way
 * the history has read it.
 */
bool
HistoryStreamMessage(HistoryRuntime *h, TupleTableSlot *row, bool no_value,
					 TimestampTz message_time, int32 partition, int64 offset, char **error)
{
	HistoryChangeKind kind = HISTORY_UPSERT;
	TimestampTz ts;
	bool		isnull;
	HistoryEntry *e;
	MemoryContext oldcxt;

	grow(h, partition + 1);
	h->next[partition] = offset + 1;
	h->offsets_moved = true;
	if (h->failed || row == NULL)
		return true;			/* refused by the stream: a dead letter already */

	/* what it does, and when */
	if (no_value)
		kind = HISTORY_DELETE;
	else if (h->delete_att > 0)
	{
		Datum		d = slot_getattr(row, h->delete_att, &isnull);

		if (!isnull && DatumGetBool(d))
			kind = HISTORY_DELETE;
	}
	if (h->sequence_att > 0 && !no_value)
	{
		Datum		d = slot_getattr(row, h->sequence_att, &isnull);

		if (isnull)
		{
			*error = psprintf("history %s: the sequence column \"%s\" of the message is null",
							  h->name, get_attname(h->source, h->sequence_att, false));
			return false;
		}
		ts = DatumGetTimestampTz(d);
	}
	else if (message_time == DT_NOBEGIN)
	{
		*error = psprintf("history %s: the message has no timestamp to sequence it by", h->name);
		return false;
	}
	else
		ts = message_time;
	if (TIMESTAMP_NOT_FINITE(ts))
	{
		*error = psprintf("history %s: the sequence value of the message is not finite", h->name);
		return false;
	}

	/* its key and values */
	oldcxt = MemoryContextSwitchTo(h->pending_cxt);
	e = palloc0(sizeof(HistoryEntry));
	e->kind = kind;
	e->ts = ts;
	e->order = message_rank++;
	e->values = palloc(sizeof(Datum) * h->ncols);
	e->nulls = palloc(sizeof(bool) * h->ncols);
	for (int i = 0; i < h->ncols; i++)
	{
		Datum		d = slot_getattr(row, h->attnums[i], &e->nulls[i]);

		if (e->nulls[i] && i < h->nkey)
		{
			MemoryContextSwitchTo(oldcxt);
			*error = psprintf("history %s: key column \"%s\" of the message is null",
							  h->name, h->colnames[i]);
			return false;
		}
		e->values[i] = e->nulls[i] ? (Datum) 0 : HistoryCopyValue(h, i, d);
	}
	e->key = HistoryKeyText(h, e->values, e->nulls);
	h->pending = lappend(h->pending, e);
	MemoryContextSwitchTo(oldcxt);
	return true;
}

/* ---------------------------------------------------------------------
 * Writing a batch
 * --------------------------------------------------------------------- */

static SPIPlanPtr
stream_plan(HistoryRuntime *h, HistoryPlan which)
{
	StringInfoData s;
	Oid		   *types = palloc(sizeof(Oid) * (h->ncols + 2));
	int			nargs = h->nkey;

	if (h->plans[which] != NULL)
		return h->plans[which];
	initStringInfo(&s);
	for (int i = 0; i < h->ncols; i++)
		types[i] = h->arraytypes[i];
	switch (which)
	{
		case PLAN_STREAM_LATEST:
			appendStringInfo(&s, "SELECT u.ord, (SELECT max(c.changed_at) FROM %s c WHERE ", h->changes);
			HistoryAppendKeyJoin(&s, h, "c");
			appendStringInfoString(&s, ") FROM ");
			HistoryAppendUnnest(&s, 1, h->nkey, true);
			break;
		case PLAN_STREAM_KEEP:
			/* in the order given: arrival numbers them so */
			appendStringInfo(&s, "INSERT INTO %s (%s, changed_at, is_delete) SELECT * FROM ",
							 h->changes, HistoryColumnList(h));
			HistoryAppendUnnest(&s, 1, h->ncols + 2, false);
			types[h->ncols] = TIMESTAMPTZARRAYOID;
			types[h->ncols + 1] = BOOLARRAYOID;
			nargs = h->ncols + 2;
			break;
		case PLAN_STREAM_CUT:
			/* the beginning of the last version that begins at or before u.cN */
			appendStringInfo(&s, "SELECT u.ord, (SELECT max(h.valid_from) FROM %s h WHERE ", h->name);
			HistoryAppendKeyJoin(&s, h, "h");
			appendStringInfo(&s, " AND h.valid_from <= u.c%d) FROM ", h->nkey);
			HistoryAppendUnnest(&s, 1, h->nkey + 1, true);
			break;
		case PLAN_STREAM_FORGET:
			appendStringInfo(&s, "DELETE FROM %s h USING ", h->name);
			HistoryAppendUnnest(&s, 1, h->nkey + 1, false);
			appendStringInfoString(&s, " WHERE ");
			HistoryAppendKeyJoin(&s, h, "h");
			appendStringInfo(&s, " AND h.valid_from >= u.c%d", h->nkey);
			break;
		case PLAN_STREAM_REOPEN:
			appendStringInfo(&s, "UPDATE %s h SET valid_to = 'infinity', is_current = true FROM ", h->name);
			HistoryAppendUnnest(&s, 1, h->nkey + 1, false);
			appendStringInfoString(&s, " WHERE ");
			HistoryAppendKeyJoin(&s, h, "h");
			appendStringInfo(&s, " AND h.valid_to = u.c%d", h->nkey);
			break;
		case PLAN_STREAM_READ:
			appendStringInfo(&s, "SELECT c.is_delete, c.changed_at");
			for (int i = 0; i < h->ncols; i++)
				appendStringInfo(&s, ", c.%s", quote_identifier(h->colnames[i]));
			appendStringInfo(&s, " FROM %s c, ", h->changes);
			HistoryAppendUnnest(&s, 1, h->nkey + 1, false);
			appendStringInfoString(&s, " WHERE ");
			HistoryAppendKeyJoin(&s, h, "c");
			appendStringInfo(&s, " AND c.changed_at >= u.c%d ORDER BY c.changed_at, c.arrival", h->nkey);
			break;
		default:
			elog(ERROR, "history statement %d is not a stream's", (int) which);
	}
	if (which != PLAN_STREAM_LATEST && which != PLAN_STREAM_KEEP)
	{
		/* the keys, then where each is cut */
		types[h->nkey] = TIMESTAMPTZARRAYOID;
		nargs = h->nkey + 1;
	}
	return HistoryKeepPlan(h, which, s.data, nargs, types);
}

/* The key columns of n entries, as arrays (args[0..nkey-1]). */
static void
key_arrays(HistoryRuntime *h, HistoryEntry **entries, int n, Datum *args)
{
	Datum	   *col = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));

	for (int i = 0; i < h->nkey; i++)
	{
		for (int j = 0; j < n; j++)
		{
			col[j] = entries[j]->values[i];
			nulls[j] = entries[j]->nulls[i];
		}
		args[i] = HistoryArray(h, i, InvalidOid, col, nulls, n);
	}
}

static int
entry_cmp(const void *a, const void *b)
{
	const HistoryEntry *x = *(HistoryEntry *const *) a;
	const HistoryEntry *y = *(HistoryEntry *const *) b;
	int			c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return (x->order > y->order) - (x->order < y->order);
}

/* Keep the messages in the changes table, in their order. */
static void
keep_messages(HistoryRuntime *h, HistoryEntry **sorted, int n)
{
	Datum	   *args = palloc(sizeof(Datum) * (h->ncols + 2));
	Datum	   *col = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc(sizeof(bool) * n);

	for (int i = 0; i < h->ncols + 2; i++)
	{
		for (int j = 0; j < n; j++)
		{
			HistoryEntry *e = sorted[j];

			nulls[j] = false;
			if (i < h->ncols)
			{
				col[j] = e->values[i];
				nulls[j] = e->nulls[i];
			}
			else if (i == h->ncols)
				col[j] = TimestampTzGetDatum(e->ts);
			else
				col[j] = BoolGetDatum(e->kind == HISTORY_DELETE);
		}
		args[i] = HistoryArray(h, i < h->ncols ? i : -1,
							   i == h->ncols ? TIMESTAMPTZOID : BOOLOID, col, nulls, n);
	}
	if (SPI_execute_plan(stream_plan(h, PLAN_STREAM_KEEP), args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "history %s: could not keep its messages", h->name);
}

/*
 * Build the versions of keys out of order again from where each late
 * message falls (keys[j]->ts, its key's earliest in the batch): the
 * version it falls into, or the last one before it, is where the key is
 * cut.  The versions from there are deleted, the one ending there is
 * current again, and the key's messages from there (the one that began
 * the cut version first) act on it in sequence: the versions the key's
 * messages give in sequence, for the work of those after the cut.  A key
 * with no version before its late message is built from all its messages.
 * Returns the versions begun.
 */
static int
rebuild(HistoryRuntime *h, HistoryEntry **keys, int n)
{
	Datum	   *args = palloc(sizeof(Datum) * (h->nkey + 1));
	Datum	   *cuts = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc0(sizeof(bool) * n);
	List	   *messages = NIL;
	SPITupleTable *tt;

	/* where each key is cut */
	key_arrays(h, keys, n, args);
	for (int j = 0; j < n; j++)
		cuts[j] = TimestampTzGetDatum(keys[j]->ts);
	args[h->nkey] = HistoryArray(h, -1, TIMESTAMPTZOID, cuts, nulls, n);
	if (SPI_execute_plan(stream_plan(h, PLAN_STREAM_CUT), args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "history %s: could not find where to cut its versions", h->name);
	tt = SPI_tuptable;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int			k = (int) DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull)) - 1;
		Datum		cut = SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull);

		cuts[k] = isnull ? TimestampTzGetDatum(DT_NOBEGIN) : cut;
	}
	SPI_freetuptable(tt);
	args[h->nkey] = HistoryArray(h, -1, TIMESTAMPTZOID, cuts, nulls, n);

	/* the versions from the cut go, the one ending there is current again */
	if (SPI_execute_plan(stream_plan(h, PLAN_STREAM_FORGET), args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "history %s: could not delete versions", h->name);
	CommandCounterIncrement();
	if (SPI_execute_plan(stream_plan(h, PLAN_STREAM_REOPEN), args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "history %s: could not reopen versions", h->name);
	CommandCounterIncrement();

	/* the messages from the cut, in sequence */
	if (SPI_execute_plan(stream_plan(h, PLAN_STREAM_READ), args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "history %s: could not read its messages", h->name);
	tt = SPI_tuptable;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = tt->vals[r];
		HistoryEntry *e = palloc0(sizeof(HistoryEntry));
		bool		isnull;

		e->kind = DatumGetBool(SPI_getbinval(tup, tt->tupdesc, 1, &isnull)) ?
			HISTORY_DELETE : HISTORY_UPSERT;
		e->ts = DatumGetTimestampTz(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
		e->order = (int64) r;
		e->values = palloc(sizeof(Datum) * h->ncols);
		e->nulls = palloc(sizeof(bool) * h->ncols);
		for (int i = 0; i < h->ncols; i++)
		{
			Datum		d = SPI_getbinval(tup, tt->tupdesc, i + 3, &e->nulls[i]);

			e->values[i] = e->nulls[i] ? (Datum) 0 : datumCopy(d, h->typbyvals[i], h->typlens[i]);
		}
		e->key = HistoryKeyText(h, e->values, e->nulls);
		messages = lappend(messages, e);
	}
	CommandCounterIncrement();
	return messages == NIL ? 0 : HistoryWriteBatch(h, messages, 0, list_length(messages));
}

/*
 * HistoryWriteStreamBatch writes the messages entries[from..to-1] of a
 * stream's history, in the flush's transaction (connected to SPI);
 * returns the versions begun.
 */
int
HistoryWriteStreamBatch(HistoryRuntime *h, List *entries, int from, int to)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate stream history batch",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	int			n = to - from;
	HistoryEntry **sorted = palloc(sizeof(HistoryEntry *) * n);
	HistoryEntry **keys = palloc(sizeof(HistoryEntry *) * n);	/* each key's first */
	int		   *firsts = palloc(sizeof(int) * (n + 1));
	HistoryEntry **late = palloc(sizeof(HistoryEntry *) * n);
	List	   *in_order = NIL;
	int			nkeys = 0;
	int			nlate = 0;
	int			begun = 0;
	Datum	   *args = palloc(sizeof(Datum) * h->nkey);
	SPITupleTable *tt;

	/* the batch by key, each key's messages in sequence */
	for (int j = 0; j < n; j++)
		sorted[j] = list_nth(entries, from + j);
	qsort(sorted, n, sizeof(HistoryEntry *), entry_cmp);
	for (int j = 0; j < n; j++)
		if (j == 0 || strcmp(sorted[j]->key, sorted[j - 1]->key) != 0)
		{
			firsts[nkeys] = j;
			keys[nkeys++] = sorted[j];
		}
	firsts[nkeys] = n;

	/* each key's latest message so far, before this batch's go in */
	key_arrays(h, keys, nkeys, args);
	if (SPI_execute_plan(stream_plan(h, PLAN_STREAM_LATEST), args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "history %s: could not read its latest messages", h->name);
	tt = SPI_tuptable;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int			k = (int) DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull)) - 1;
		Datum		latest = SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull);

		/* the batch's first message of the key is its earliest */
		if (!isnull && keys[k]->ts < DatumGetTimestampTz(latest))
			late[nlate++] = keys[k];
		else
			for (int j = firsts[k]; j < firsts[k + 1]; j++)
				in_order = lappend(in_order, sorted[j]);
	}
	SPI_freetuptable(tt);

	keep_messages(h, sorted, n);
	CommandCounterIncrement();
	if (in_order != NIL)
		begun += HistoryWriteBatch(h, in_order, 0, list_length(in_order));
	if (nlate > 0)
		begun += rebuild(h, late, nlate);

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return begun;
}
