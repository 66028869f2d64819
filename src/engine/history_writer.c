/*-------------------------------------------------------------------------
 *
 * history_writer.c
 *	  Writing a history's committed changes, in the flush's transaction:
 *	  a batch of them with four statements, whatever its size (the keys'
 *	  current versions read at once, the versions worked out in memory,
 *	  then type-1 values, ended versions and new versions written at once,
 *	  each statement over arrays of the values: unnest), and a TRUNCATE.
 *
 * Each change compares with its key's current version, in commit order:
 *	- a change of no tracked column opens no version; changed type-1
 *	  columns are overwritten in every version of the key;
 *	- otherwise the current version ends at the commit time and the next
 *	  one begins there (a deleted key closes it, adds a tombstone version
 *	  or is ignored, as the history's delete policy says; a key inserted
 *	  again begins a new version);
 *	- a commit time not after the current version's beginning (clocks of
 *	  two backends) never makes a version go backwards: the change takes
 *	  the current version's beginning, and a version that would last no
 *	  time is overwritten instead.
 *
 * In a batch, for each key: its current version at the start (if any) is
 * read with its values; each change then acts on the key's state in
 * memory: a version begun in the batch and ended in it again is written
 * already ended, the version current at the start is ended (or, when a
 * change comes at its very beginning, overwritten: the one write done row
 * by row); type-1 values end as the key's last change has them, in the
 * versions of the table as in those of the batch.  Writes go in this
 * order: overwritten versions, ended versions (by the rows the read found,
 * or that an overwrite made: no second lookup of the keys), type-1 values,
 * new versions (so that a key never has two current versions).  A TRUNCATE
 * ends a batch (history.c splits there): it acts on the table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "engine/history_internal.h"

/* HistoryColumnList: the history's columns, quoted and separated by commas. */
char *
HistoryColumnList(HistoryRuntime *h)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int i = 0; i < h->ncols; i++)
		appendStringInfo(&s, "%s%s", i > 0 ? ", " : "", quote_identifier(h->colnames[i]));
	return s.data;
}


/*
 * HistoryCheckOwner refuses to write a history whose owner can no longer read what it keeps
 * from its source: a column's SELECT revoked, row-level security enabled.
 */
void
HistoryCheckOwner(HistoryRuntime *h)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(h->relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table of history %s is gone", h->name)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	for (int i = 0; i < h->ncols; i++)
	{
		if (pg_class_aclcheck(h->source, owner, ACL_SELECT) != ACLCHECK_OK &&
			pg_attribute_aclcheck(h->source, h->attnums[i], owner, ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("its owner, role \"%s\", can no longer read column \"%s\" of table %s",
							GetUserNameFromId(owner, false), h->colnames[i], h->source_name)));
	}
	if (check_enable_rls(h->source, owner, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("row-level security of table %s applies to its owner, role \"%s\"",
						h->source_name, GetUserNameFromId(owner, false))));
}

/* " WHERE k1 = $1 AND k2 = $2" */
static void
append_key_match(StringInfo s, HistoryRuntime *h)
{
	for (int i = 0; i < h->nkey; i++)
		appendStringInfo(s, "%s %s = $%d", i == 0 ? " WHERE" : " AND",
						 quote_identifier(h->colnames[i]), i + 1);
}

/* a key of the batch: its state as the changes go */
typedef struct KeyState
{
	char	   *key;			/* its text (the hash key) */
	int			ord;			/* its row in the arrays, from 0 */
	Datum	   *values;			/* ncols: the key, then the current values */
	bool	   *nulls;
	bool		known;			/* the current values are known */

	bool		open;			/* it has a current version */
	bool		existing;		/* ... the one current at the start */
	bool		deleted;		/* ... a tombstone */
	int32		version;		/* its number */
	TimestampTz from;			/* its beginning */
	int32		last_version;	/* the key's greatest version number */
	TimestampTz last_end;		/* where its last ended version ended */
	int			pending;		/* the open version begun in the batch, or -1 */

	bool		had_versions;	/* versions in the table at the start */
	ItemPointerData ctid;		/* the row of the version current at the start */
	bool		close_existing; /* the version current at the start ends */
	TimestampTz close_ts;
	bool		type1_changed;
} KeyState;

/* a version begun in the batch */
typedef struct NewVersion
{
	KeyState   *k;
	Datum	   *values;
	bool	   *nulls;
	TimestampTz from;
	TimestampTz to;
	bool		current;
	int32		version;
	bool		deleted;
} NewVersion;

typedef struct Batch
{
	HistoryRuntime *h;
	HTAB	   *keys;
	KeyState  **byord;
	int			nkeys;
	NewVersion *news;
	int			nnews;
	int			maxnews;
} Batch;

static uint32
key_hash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
key_match(const void *a, const void *b, Size keysize)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* HistoryAppendKeyJoin: "k1 = u.c0 AND k2 = u.c1" for the key columns of alias a */
void
HistoryAppendKeyJoin(StringInfo s, HistoryRuntime *h, const char *a)
{
	for (int i = 0; i < h->nkey; i++)
		appendStringInfo(s, "%s%s.%s = u.c%d", i > 0 ? " AND " : "", a,
						 quote_identifier(h->colnames[i]), i);
}

/* HistoryAppendUnnest: "unnest($1, ..., $n) AS u(c0, ..., cn-1)" over the parameters first..first+n-1 */
void
HistoryAppendUnnest(StringInfo s, int first, int n, bool ordinality)
{
	appendStringInfoString(s, "unnest(");
	for (int i = 0; i < n; i++)
		appendStringInfo(s, "%s$%d", i > 0 ? ", " : "", first + i);
	appendStringInfoString(s, ordinality ? ") WITH ORDINALITY AS u(" : ") AS u(");
	for (int i = 0; i < n; i++)
		appendStringInfo(s, "%sc%d", i > 0 ? ", " : "", i);
	appendStringInfoString(s, ordinality ? ", ord)" : ")");
}

/*
 * HistoryKeepPlan prepares statement which of a history, kept until
 * HistoryFreePlans.  Its plan is the generic one from the first run: every
 * statement goes from the keys of a batch (unnest) to their rows through an
 * index.  A custom plan knows how many keys come and, while the table is
 * small, prefers reading all of it into a hash, at each of the first runs
 * (the plan cache's trials).
 */
SPIPlanPtr
HistoryKeepPlan(HistoryRuntime *h, HistoryPlan which, const char *sql, int nargs, Oid *types)
{
	h->plans[which] = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);
	if (h->plans[which] == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	SPI_keepplan(h->plans[which]);
	return h->plans[which];
}

static SPIPlanPtr
batch_plan(HistoryRuntime *h, HistoryPlan which)
{
	StringInfoData s;
	Oid		   *types = palloc(sizeof(Oid) * (h->ncols + 5));
	int			nargs = 0;
	bool		tomb = h->on_delete == 't';
	int			t1 = h->nkey + h->ntracked;

	if (h->plans[which] != NULL)
		return h->plans[which];
	initStringInfo(&s);
	switch (which)
	{
		case PLAN_BATCH_CURRENT:
			appendStringInfoString(&s, "SELECT u.ord, c.version, c.valid_from");
			for (int i = h->nkey; i < h->ncols; i++)
				appendStringInfo(&s, ", c.%s", quote_identifier(h->colnames[i]));
			appendStringInfo(&s, ", %s, CASE WHEN c.version IS NULL THEN"
							 " (SELECT max(m.version) FROM %s m WHERE ",
							 tomb ? "c.is_deleted" : "false", h->name);
			HistoryAppendKeyJoin(&s, h, "m");
			appendStringInfoString(&s, ") END, c.ctid FROM ");
			HistoryAppendUnnest(&s, 1, h->nkey, true);
			appendStringInfo(&s, " LEFT JOIN %s c ON ", h->name);
			HistoryAppendKeyJoin(&s, h, "c");
			appendStringInfoString(&s, " AND c.is_current");
			nargs = h->nkey;
			break;
		case PLAN_BATCH_TYPE1:
			appendStringInfo(&s, "UPDATE %s h SET (", h->name);
			for (int i = t1; i < h->ncols; i++)
				appendStringInfo(&s, "%s%s", i > t1 ? ", " : "", quote_identifier(h->colnames[i]));
			appendStringInfoString(&s, ") = ROW(");
			for (int i = t1; i < h->ncols; i++)
				appendStringInfo(&s, "%su.c%d", i > t1 ? ", " : "", h->nkey + i - t1);
			appendStringInfoString(&s, ") FROM ");
			HistoryAppendUnnest(&s, 1, h->nkey + h->ntype1, false);
			appendStringInfoString(&s, " WHERE ");
			HistoryAppendKeyJoin(&s, h, "h");
			appendStringInfoString(&s, " AND ROW(");
			for (int i = t1; i < h->ncols; i++)
				appendStringInfo(&s, "%sh.%s", i > t1 ? ", " : "", quote_identifier(h->colnames[i]));
			appendStringInfoString(&s, ") IS DISTINCT FROM ROW(");
			for (int i = t1; i < h->ncols; i++)
				appendStringInfo(&s, "%su.c%d", i > t1 ? ", " : "", h->nkey + i - t1);
			appendStringInfoChar(&s, ')');
			for (int i = 0; i < h->nkey; i++)
				types[nargs++] = h->arraytypes[i];
			for (int i = t1; i < h->ncols; i++)
				types[nargs++] = h->arraytypes[i];
			break;
		case PLAN_BATCH_CLOSE:
			/* by the rows read (a TID scan): no second lookup of the keys */
			appendStringInfo(&s, "UPDATE %s h SET valid_to = u.c1, is_current = false FROM ",
							 h->name);
			HistoryAppendUnnest(&s, 1, 2, false);
			appendStringInfoString(&s, " WHERE h.ctid = u.c0");
			types[nargs++] = TIDARRAYOID;
			types[nargs++] = TIMESTAMPTZARRAYOID;
			break;
		case PLAN_BATCH_INSERT:
			appendStringInfo(&s, "INSERT INTO %s (%s, valid_from, valid_to, is_current, version%s)"
							 " SELECT * FROM ", h->name, HistoryColumnList(h),
							 tomb ? ", is_deleted" : "");
			HistoryAppendUnnest(&s, 1, h->ncols + 4 + (tomb ? 1 : 0), false);
			for (int i = 0; i < h->ncols; i++)
				types[nargs++] = h->arraytypes[i];
			types[nargs++] = TIMESTAMPTZARRAYOID;
			types[nargs++] = TIMESTAMPTZARRAYOID;
			types[nargs++] = BOOLARRAYOID;
			types[nargs++] = INT4ARRAYOID;
			if (tomb)
				types[nargs++] = BOOLARRAYOID;
			break;
		default:
			elog(ERROR, "history statement %d is not a batch's", (int) which);
	}
	if (which == PLAN_BATCH_CURRENT)
		for (int i = 0; i < h->nkey; i++)
			types[i] = h->arraytypes[i];
	return HistoryKeepPlan(h, which, s.data, nargs, types);
}

/* The statement that overwrites a key's current version, or ends every one (TRUNCATE). */
static SPIPlanPtr
row_plan(HistoryRuntime *h, HistoryPlan which)
{
	StringInfoData s;
	Oid		   *types = palloc(sizeof(Oid) * (h->ncols + 1));
	int			nargs;
	bool		tomb = h->on_delete == 't';

	if (h->plans[which] != NULL)
		return h->plans[which];
	initStringInfo(&s);
	if (which == PLAN_REPLACE)
	{
		appendStringInfo(&s, "UPDATE %s SET ", h->name);
		for (int i = h->nkey; i < h->ncols; i++)
			appendStringInfo(&s, "%s%s = $%d", i > h->nkey ? ", " : "",
							 quote_identifier(h->colnames[i]), i + 1);
		if (tomb)
			appendStringInfo(&s, "%sis_deleted = $%d", h->ncols > h->nkey ? ", " : "", h->ncols + 1);
		else if (h->ncols == h->nkey)
			appendStringInfoString(&s, "is_current = true");
		append_key_match(&s, h);
		appendStringInfoString(&s, " AND is_current RETURNING ctid");
		memcpy(types, h->types, sizeof(Oid) * h->ncols);
		types[h->ncols] = BOOLOID;
		nargs = h->ncols + (tomb ? 1 : 0);
	}
	else
	{
		appendStringInfo(&s, "UPDATE %s SET valid_to = greatest(valid_from, $1), is_current = false"
						 " WHERE is_current", h->name);
		types[0] = TIMESTAMPTZOID;
		nargs = 1;
	}
	return HistoryKeepPlan(h, which, s.data, nargs, types);
}

/*
 * Overwrite the tracked and type-1 values of the current version of the
 * key of values (and mark it a tombstone or not); *ctid becomes its row.
 */
static void
replace_current(HistoryRuntime *h, Datum *values, bool *nulls, bool deleted, ItemPointer ctid)
{
	bool		isnull;
	Datum	   *args = palloc(sizeof(Datum) * (h->ncols + 1));
	char	   *n = palloc(h->ncols + 1);
	int			ret;

	for (int i = 0; i < h->ncols; i++)
	{
		args[i] = values[i];
		n[i] = nulls[i] ? 'n' : ' ';
	}
	args[h->ncols] = BoolGetDatum(deleted);
	n[h->ncols] = ' ';
	ret = SPI_execute_plan(row_plan(h, PLAN_REPLACE), args, n, false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING || SPI_processed != 1)
		elog(ERROR, "history %s: overwriting a version returned %s", h->name,
			 SPI_result_code_string(ret));
	*ctid = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
	pfree(args);
	pfree(n);
}

/* HistoryWriteTruncate: the source was truncated at ts. */
void
HistoryWriteTruncate(HistoryRuntime *h, TimestampTz ts)
{
	Datum		arg = TimestampTzGetDatum(ts);
	int			ret;

	if (!h->truncate_closes)
		return;
	ret = SPI_execute_plan(row_plan(h, PLAN_TRUNCATE), &arg, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "history %s: ending every version returned %s", h->name,
			 SPI_result_code_string(ret));
}

/* HistoryArray: an array of n values of column i (or of type, when i < 0). */
Datum
HistoryArray(HistoryRuntime *h, int i, Oid type, Datum *values, bool *nulls, int n)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};

	if (i >= 0)
		return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, h->types[i],
												  h->typlens[i], h->typbyvals[i], h->typaligns[i]));
	if (type == TIMESTAMPTZOID)
		return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, TIMESTAMPTZOID,
												  sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (type == TIDOID)
		return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, TIDOID,
												  sizeof(ItemPointerData), false, TYPALIGN_SHORT));
	if (type == INT4OID)
		return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, INT4OID,
												  sizeof(int32), true, TYPALIGN_INT));
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, BOOLOID,
											  1, true, TYPALIGN_CHAR));
}

static void
execute(HistoryRuntime *h, HistoryPlan which, Datum *args, int expect)
{
	int			ret = SPI_execute_plan(batch_plan(h, which), args, NULL, false, 0);

	if (ret != expect)
		elog(ERROR, "history %s: batch statement %d returned %s", h->name, (int) which,
			 SPI_result_code_string(ret));
}

/* Whether the tracked values of a change differ from the key's current ones. */
static bool
tracked_differ(HistoryRuntime *h, KeyState *k, HistoryEntry *e, int first, int last)
{
	for (int i = first; i < last; i++)
	{
		if (k->nulls[i] || e->nulls[i])
		{
			if (k->nulls[i] != e->nulls[i])
				return true;
		}
		else if (OidIsValid(h->eq[i].fn_oid) ?
				 !DatumGetBool(FunctionCall2Coll(&h->eq[i], h->collations[i],
												 k->values[i], e->values[i])) :
				 !datum_image_eq(k->values[i], e->values[i], h->typbyvals[i], h->typlens[i]))
			return true;
	}
	return false;
}

/* The key's values become those of a change (columns first..last-1). */
static void
take_values(KeyState *k, HistoryEntry *e, int first, int last)
{
	for (int i = first; i < last; i++)
	{
		k->values[i] = e->values[i];
		k->nulls[i] = e->nulls[i];
	}
}

/* A version begins in the batch for the key, with its current values. */
static void
begin_version(Batch *b, KeyState *k, TimestampTz from, bool deleted)
{
	HistoryRuntime *h = b->h;
	NewVersion *v;

	if (b->nnews == b->maxnews)
	{
		b->maxnews *= 2;
		b->news = repalloc(b->news, sizeof(NewVersion) * b->maxnews);
	}
	v = &b->news[b->nnews];
	v->k = k;
	v->values = palloc(sizeof(Datum) * h->ncols);
	v->nulls = palloc(sizeof(bool) * h->ncols);
	memcpy(v->values, k->values, sizeof(Datum) * h->ncols);
	memcpy(v->nulls, k->nulls, sizeof(bool) * h->ncols);
	v->from = from;
	v->to = DT_NOEND;
	v->current = true;
	v->version = ++k->last_version;
	v->deleted = deleted;
	k->pending = b->nnews++;
	k->open = true;
	k->existing = false;
	k->deleted = deleted;
	k->version = v->version;
	k->from = from;
}

/* The key's current version ends at ts. */
static void
end_version(Batch *b, KeyState *k, TimestampTz ts)
{
	if (k->pending >= 0)
	{
		b->news[k->pending].to = ts;
		b->news[k->pending].current = false;
	}
	else if (k->existing)
	{
		k->close_existing = true;
		k->close_ts = ts;
	}
	k->open = false;
	k->existing = false;
	k->pending = -1;
	k->last_end = ts;
}

/* The key's current version, begun at this very time, takes its values. */
static void
overwrite_version(Batch *b, KeyState *k, bool deleted)
{
	HistoryRuntime *h = b->h;

	if (k->pending >= 0)
	{
		memcpy(b->news[k->pending].values, k->values, sizeof(Datum) * h->ncols);
		memcpy(b->news[k->pending].nulls, k->nulls, sizeof(bool) * h->ncols);
		b->news[k->pending].deleted = deleted;
	}
	else
		replace_current(h, k->values, k->nulls, deleted, &k->ctid);
	k->deleted = deleted;
}

/* One change, on its key's state. */
static void
apply(Batch *b, KeyState *k, HistoryEntry *e)
{
	HistoryRuntime *h = b->h;
	int			t1 = h->nkey + h->ntracked;
	TimestampTz ts = k->open ? Max(e->ts, k->from) : Max(e->ts, k->last_end);

	if (e->kind == HISTORY_DELETE)
	{
		if (!k->open || k->deleted || h->on_delete == 'i')
			return;
		if (h->on_delete == 't' && ts == k->from)
		{
			/* the tombstone takes the place of a version that lasted no time */
			take_values(k, e, h->nkey, h->ncols);
			overwrite_version(b, k, true);
			return;
		}
		end_version(b, k, ts);
		if (h->on_delete == 't')
		{
			take_values(k, e, h->nkey, t1);
			begin_version(b, k, ts, true);
		}
		return;
	}

	/* an upsert: type-1 values go into every version of the key */
	if (h->ntype1 > 0 && (!k->known || tracked_differ(h, k, e, t1, h->ncols)))
	{
		take_values(k, e, t1, h->ncols);
		k->type1_changed = true;
	}
	k->known = true;
	if (!k->open)
	{
		take_values(k, e, h->nkey, t1);
		begin_version(b, k, ts, false);
		return;
	}
	if (!k->deleted && !tracked_differ(h, k, e, h->nkey, t1))
		return;
	take_values(k, e, h->nkey, t1);
	if (ts == k->from)
		overwrite_version(b, k, false);
	else
	{
		end_version(b, k, ts);
		begin_version(b, k, ts, false);
	}
}

/* Read the current versions of the batch's keys into their states. */
static void
read_current(Batch *b, MemoryContext cxt)
{
	HistoryRuntime *h = b->h;
	Datum	   *args = palloc(sizeof(Datum) * h->nkey);
	Datum	   *col = palloc(sizeof(Datum) * b->nkeys);
	bool	   *colnulls = palloc(sizeof(bool) * b->nkeys);
	SPITupleTable *tt;

	for (int i = 0; i < h->nkey; i++)
	{
		for (int j = 0; j < b->nkeys; j++)
		{
			col[j] = b->byord[j]->values[i];
			colnulls[j] = b->byord[j]->nulls[i];
		}
		args[i] = HistoryArray(h, i, InvalidOid, col, colnulls, b->nkeys);
	}
	execute(h, PLAN_BATCH_CURRENT, args, SPI_OK_SELECT);
	tt = SPI_tuptable;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = tt->vals[r];
		bool		isnull;
		KeyState   *k = b->byord[DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull)) - 1];
		Datum		version = SPI_getbinval(tup, tt->tupdesc, 2, &isnull);
		MemoryContext oldcxt;

		if (isnull)
		{
			/* no current version: the key's last one, if any */
			Datum		last = SPI_getbinval(tup, tt->tupdesc, h->ncols - h->nkey + 5, &isnull);

			k->last_version = isnull ? 0 : DatumGetInt32(last);
			k->had_versions = !isnull;
			continue;
		}
		k->open = k->existing = k->had_versions = k->known = true;
		k->version = k->last_version = DatumGetInt32(version);
		k->from = DatumGetTimestampTz(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
		k->deleted = DatumGetBool(SPI_getbinval(tup, tt->tupdesc, h->ncols - h->nkey + 4, &isnull));
		k->ctid = *(ItemPointer) DatumGetPointer(SPI_getbinval(tup, tt->tupdesc, h->ncols - h->nkey + 6, &isnull));
		oldcxt = MemoryContextSwitchTo(cxt);
		for (int i = h->nkey; i < h->ncols; i++)
		{
			Datum		d = SPI_getbinval(tup, tt->tupdesc, i - h->nkey + 4, &k->nulls[i]);

			k->values[i] = k->nulls[i] ? (Datum) 0 : datumCopy(d, h->typbyvals[i], h->typlens[i]);
		}
		MemoryContextSwitchTo(oldcxt);
	}
}

/* Write type-1 values, ended versions and new versions. */
static void
write_batch(Batch *b)
{
	HistoryRuntime *h = b->h;
	int			t1 = h->nkey + h->ntracked;
	int			n = 0;
	int			width = Max(b->nkeys, b->nnews);
	Datum	   *args = palloc(sizeof(Datum) * (h->ncols + 5));
	Datum	  **cols = palloc(sizeof(Datum *) * (h->ncols + 5));
	bool	  **nulls = palloc(sizeof(bool *) * (h->ncols + 5));

	for (int i = 0; i < h->ncols + 5; i++)
	{
		cols[i] = palloc(sizeof(Datum) * Max(width, 1));
		nulls[i] = palloc0(sizeof(bool) * Max(width, 1));
	}

	/* the versions current at the start that ended, by their rows (first: the
	 * type-1 values move them) */
	n = 0;
	for (int j = 0; j < b->nkeys; j++)
	{
		KeyState   *k = b->byord[j];

		if (!k->close_existing)
			continue;
		cols[0][n] = PointerGetDatum(&k->ctid);
		cols[1][n] = TimestampTzGetDatum(k->close_ts);
		n++;
	}
	if (n > 0)
	{
		args[0] = HistoryArray(h, -1, TIDOID, cols[0], nulls[0], n);
		args[1] = HistoryArray(h, -1, TIMESTAMPTZOID, cols[1], nulls[1], n);
		execute(h, PLAN_BATCH_CLOSE, args, SPI_OK_UPDATE);
		if (SPI_processed != (uint64) n)
			elog(ERROR, "history %s: %d versions to end, " UINT64_FORMAT " found",
				 h->name, n, SPI_processed);
	}

	/* type-1 values, in the versions the table had */
	if (h->ntype1 > 0)
	{
		n = 0;
		for (int j = 0; j < b->nkeys; j++)
		{
			KeyState   *k = b->byord[j];

			if (!k->type1_changed || !k->had_versions)
				continue;
			for (int i = 0; i < h->nkey; i++)
				cols[i][n] = k->values[i], nulls[i][n] = k->nulls[i];
			for (int i = t1; i < h->ncols; i++)
				cols[h->nkey + i - t1][n] = k->values[i], nulls[h->nkey + i - t1][n] = k->nulls[i];
			n++;
		}
		if (n > 0)
		{
			for (int i = 0; i < h->nkey; i++)
				args[i] = HistoryArray(h, i, InvalidOid, cols[i], nulls[i], n);
			for (int i = t1; i < h->ncols; i++)
				args[h->nkey + i - t1] = HistoryArray(h, i, InvalidOid, cols[h->nkey + i - t1],
												  nulls[h->nkey + i - t1], n);
			execute(h, PLAN_BATCH_TYPE1, args, SPI_OK_UPDATE);
		}
	}

	/* the new versions, with the key's last type-1 values */
	if (b->nnews == 0)
		return;
	for (int j = 0; j < b->nnews; j++)
	{
		NewVersion *v = &b->news[j];

		for (int i = 0; i < h->ncols; i++)
		{
			bool		type1 = i >= t1;

			cols[i][j] = type1 ? v->k->values[i] : v->values[i];
			nulls[i][j] = type1 ? v->k->nulls[i] : v->nulls[i];
		}
		cols[h->ncols][j] = TimestampTzGetDatum(v->from);
		cols[h->ncols + 1][j] = TimestampTzGetDatum(v->to);
		cols[h->ncols + 2][j] = BoolGetDatum(v->current);
		cols[h->ncols + 3][j] = Int32GetDatum(v->version);
		cols[h->ncols + 4][j] = BoolGetDatum(v->deleted);
		for (int i = h->ncols; i < h->ncols + 5; i++)
			nulls[i][j] = false;
	}
	for (int i = 0; i < h->ncols; i++)
		args[i] = HistoryArray(h, i, InvalidOid, cols[i], nulls[i], b->nnews);
	args[h->ncols] = HistoryArray(h, -1, TIMESTAMPTZOID, cols[h->ncols], nulls[h->ncols], b->nnews);
	args[h->ncols + 1] = HistoryArray(h, -1, TIMESTAMPTZOID, cols[h->ncols + 1], nulls[h->ncols + 1], b->nnews);
	args[h->ncols + 2] = HistoryArray(h, -1, BOOLOID, cols[h->ncols + 2], nulls[h->ncols + 2], b->nnews);
	args[h->ncols + 3] = HistoryArray(h, -1, INT4OID, cols[h->ncols + 3], nulls[h->ncols + 3], b->nnews);
	args[h->ncols + 4] = HistoryArray(h, -1, BOOLOID, cols[h->ncols + 4], nulls[h->ncols + 4], b->nnews);
	execute(h, PLAN_BATCH_INSERT, args, SPI_OK_INSERT);
}

/*
 * HistoryWriteBatch writes the changes entries[from..to-1] (no TRUNCATE
 * among them), in the flush's transaction; returns the versions begun.
 */
int
HistoryWriteBatch(HistoryRuntime *h, List *entries, int from, int to)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate history batch",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	Batch		b = {0};
	HASHCTL		hctl;
	int			begun;

	b.h = h;
	hctl.keysize = sizeof(char *);
	hctl.entrysize = sizeof(KeyState);
	hctl.hash = key_hash;
	hctl.match = key_match;
	hctl.hcxt = cxt;
	b.keys = hash_create("flowstate history batch keys", Max(to - from, 16), &hctl,
						 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	b.byord = palloc(sizeof(KeyState *) * Max(to - from, 1));
	b.maxnews = Max(to - from, 16);
	b.news = palloc(sizeof(NewVersion) * b.maxnews);

	/* the keys of the batch, in the order they come */
	for (int j = from; j < to; j++)
	{
		HistoryEntry *e = list_nth(entries, j);
		bool		found;
		KeyState   *k = hash_search(b.keys, &e->key, HASH_ENTER, &found);

		if (found)
			continue;
		memset(((char *) k) + sizeof(char *), 0, sizeof(KeyState) - sizeof(char *));
		k->ord = b.nkeys;
		k->pending = -1;
		k->last_end = DT_NOBEGIN;
		k->values = palloc(sizeof(Datum) * h->ncols);
		k->nulls = palloc0(sizeof(bool) * h->ncols);
		memcpy(k->values, e->values, sizeof(Datum) * h->nkey);
		memcpy(k->nulls, e->nulls, sizeof(bool) * h->nkey);
		b.byord[b.nkeys++] = k;
	}

	read_current(&b, cxt);
	for (int j = from; j < to; j++)
	{
		HistoryEntry *e = list_nth(entries, j);

		apply(&b, hash_search(b.keys, &e->key, HASH_FIND, NULL), e);
	}
	write_batch(&b);
	begun = b.nnews;

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return begun;
}

/* HistoryFreePlans releases the prepared statements of a history. */
void
HistoryFreePlans(HistoryRuntime *h)
{
	for (int i = 0; i < NUM_PLANS; i++)
		if (h->plans[i] != NULL)
			SPI_freeplan(h->plans[i]);
}
