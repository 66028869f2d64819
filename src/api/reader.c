/*-------------------------------------------------------------------------
 *
 * reader.c
 *	  What a reader of a continuous view takes from shared memory: its
 *	  captures, kept for its snapshot (ApiCapture), and
 *	  flowstate.unflushed(), which the views of versions before 0.5.0 call
 *	  (partial_state.c has what the views of 0.5.0 call).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "aggregates/aggregate.h"
#include "fs_catalog/security.h"
#include "api/api.h"

extern PGDLLEXPORT Datum flowstate_unflushed(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_unflushed);

/*
 * Captures are kept for as long as the reader's snapshot: one query in READ
 * COMMITTED (the function's per-query memory), the whole transaction in
 * REPEATABLE READ and SERIALIZABLE.  All calls of one query therefore see
 * shared memory as of one instant.  The row ids of the captured groups are
 * hashed on first need (ApiCaptureHolds).
 */
typedef struct CachedCapture
{
	MemoryContext scope;
	Oid			relid;
	bool		filtered;		/* the groups of part_hash only */
	uint32		part_hash;
	Capture    *cap;
	bool		checked;		/* the reader's rights were checked */
	int32		number;			/* the capture's number in the backend */
	int64	   *gids;			/* open addressing, 0 for empty; NULL until built */
	uint32		gid_mask;
	struct CachedCapture *next;
} CachedCapture;

static CachedCapture *captures = NULL;
static int32 last_number = 0;

static void
forget_captures(void *arg)
{
	MemoryContext scope = (MemoryContext) arg;
	CachedCapture **link = &captures;

	while (*link)
	{
		if ((*link)->scope == scope)
			*link = (*link)->next;
		else
			link = &(*link)->next;
	}
}

/*
 * A query that reads the groups of one key (but the window) captures those
 * only (part_hash, see read_filter.c), unless it has captured all groups
 * already.  A transaction snapshot captures all groups once: its reads
 * repeat.
 */
static CachedCapture *
capture_for(Oid relid, MemoryContext query_cxt, const uint32 *part_hash)
{
	MemoryContext scope = IsolationUsesXactSnapshot() ? TopTransactionContext : query_cxt;
	CachedCapture *cc;
	CachedCapture *all = NULL;
	MemoryContext oldcxt;
	StoreKey	key = {MyDatabaseId, relid};
	bool		scope_known = false;

	if (IsolationUsesXactSnapshot())
		part_hash = NULL;
	/*
	 * The same capture for every call of one read: the one of its part
	 * hash if there is one, else one of all groups, else a new one.
	 */
	for (cc = captures; cc; cc = cc->next)
	{
		if (cc->scope != scope)
			continue;
		scope_known = true;
		if (cc->relid != relid)
			continue;
		if (part_hash != NULL && cc->filtered && cc->part_hash == *part_hash)
			return cc;
		if (!cc->filtered || cc->cap == NULL || !cc->cap->partial)
			all = cc;
	}
	if (all != NULL)
		return all;

	oldcxt = MemoryContextSwitchTo(scope);
	if (!scope_known)
	{
		MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

		cb->func = forget_captures;
		cb->arg = scope;
		MemoryContextRegisterResetCallback(scope, cb);
	}
	cc = palloc0(sizeof(CachedCapture));
	cc->scope = scope;
	cc->relid = relid;
	cc->filtered = (part_hash != NULL);
	cc->part_hash = part_hash ? *part_hash : 0;
	cc->cap = StoreCapture(key, GetActiveSnapshot(), part_hash);
	cc->number = ++last_number;
	cc->next = captures;
	captures = cc;
	MemoryContextSwitchTo(oldcxt);
	return cc;
}

/*
 * ApiCheckReader refuses a reader of a continuous view who may not read it
 * (SELECT on the view, or on its state table), or whose view's owner may no
 * longer read its source.
 */
void
ApiCheckReader(Oid view_relid, Oid state_relid, Oid def_relid)
{
	if (pg_class_aclcheck(view_relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_class_aclcheck(state_relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_VIEW, get_rel_name(view_relid));
	/* served only while the view's owner may read its source */
	(void) SecurityCheckViewRights(view_relid, def_relid);
}

/*
 * ApiCapture returns the groups of the continuous view whose state table is
 * relid that the reader's snapshot takes from shared memory (with
 * part_hash, at least those whose keys but the window hash to it), once the
 * reader's rights are checked; NULL if the view has no writer (the state
 * table holds it all).
 */
Capture *
ApiCapture(Oid relid, MemoryContext query_cxt, const uint32 *part_hash)
{
	CachedCapture *cc = capture_for(relid, query_cxt, part_hash);
	Capture    *cap = cc->cap;

	if (cap == NULL || cc->checked)
		return cap;

	ApiCheckReader(cap->view_relid, relid, cap->def_relid);

	if (cap->too_old)
		ereport(ERROR,
				(errcode(ERRCODE_SNAPSHOT_TOO_OLD),
				 errmsg("snapshot too old to read continuous view \"%s\"",
						get_rel_name(cap->view_relid)),
				 errdetail("Groups the snapshot needs left shared memory while it waited in flowstate.wait_for()."),
				 errhint("Read the view in a statement of its own after flowstate.wait_for().")));

	/* the defining query fails on these groups: so does the view */
	if (cap->overflowed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("value out of range: overflow"),
				 errdetail("%lld %s of continuous view \"%s\" %s a float sum or variance out of range, or an aggregate whose partial states could not be combined.",
						   (long long) cap->overflowed,
						   cap->overflowed == 1 ? "group" : "groups",
						   get_rel_name(cap->view_relid),
						   cap->overflowed == 1 ? "has" : "have"),
				 errhint("Correct or delete the source rows whose sum overflows; the view reads again once no group is out of range.")));
	cc->checked = true;
	return cap;
}

/* The cached capture that is cap. */
static CachedCapture *
cached(Capture *cap)
{
	for (CachedCapture *cc = captures; cc; cc = cc->next)
		if (cc->cap == cap)
			return cc;
	elog(ERROR, "flowstate capture not found");
	return NULL;
}

/*
 * ApiCaptureNumber numbers a capture, so that a later call of the same
 * query finds it (ApiCaptureNumbered).
 */
int32
ApiCaptureNumber(Capture *cap)
{
	return cached(cap)->number;
}

/*
 * ApiCaptureNumbered returns the capture of that number the caller's query
 * (or transaction) holds, NULL if none.
 */
Capture *
ApiCaptureNumbered(int32 number)
{
	for (CachedCapture *cc = captures; cc; cc = cc->next)
		if (cc->number == number)
			return cc->checked ? cc->cap : NULL;
	return NULL;
}

static inline uint32
gid_slot(int64 gid, uint32 mask)
{
	return (uint32) (((uint64) gid * UINT64CONST(0x9E3779B97F4A7C15)) >> 32) & mask;
}

/*
 * ApiCaptureHolds tells whether a capture holds the group whose state
 * table row is gid.
 */
bool
ApiCaptureHolds(Capture *cap, int64 gid)
{
	CachedCapture *cc = cached(cap);
	uint32		i;

	if (cc->gids == NULL)
	{
		uint32		size = 16;

		while (size < (uint32) cap->n * 2)
			size <<= 1;
		cc->gids = MemoryContextAllocZero(cc->scope, sizeof(int64) * size);
		cc->gid_mask = size - 1;
		for (int n = 0; n < cap->n; n++)
		{
			if (cap->gid[n] <= 0)
				continue;
			for (i = gid_slot(cap->gid[n], cc->gid_mask); cc->gids[i] != 0;
				 i = (i + 1) & cc->gid_mask)
				;
			cc->gids[i] = cap->gid[n];
		}
	}
	for (i = gid_slot(gid, cc->gid_mask); cc->gids[i] != 0; i = (i + 1) & cc->gid_mask)
		if (cc->gids[i] == gid)
			return true;
	return false;
}

/*
 * flowstate_unflushed returns the groups of a continuous view whose newest
 * state the caller's snapshot does not see in its state table: gid, live,
 * keys k1..kn, aggregates a1..am.  A row with gid -1 says that every row of
 * the state table is gone (the source was truncated).  The views of
 * versions before 0.5.0 read it; theirs read flowstate.unflushed_states().
 */
Datum
flowstate_unflushed(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Capture    *cap;
	const ViewLayout *layout;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	int			natts;

	InitMaterializedSRF(fcinfo, 0);
	cap = ApiCapture(relid, fcinfo->flinfo->fn_mcxt, NULL);
	if (cap == NULL)
		PG_RETURN_NULL();

	layout = &cap->layout;
	desc = rsinfo->setDesc;
	natts = 2 + layout->nkeys + layout->naggs;
	if (desc->natts != natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("flowstate.unflushed() of this view returns %d columns, not %d",
						natts, desc->natts),
				 errhint("Read the continuous view itself.")));
	values = palloc(sizeof(Datum) * natts);
	nulls = palloc(sizeof(bool) * natts);

	for (int i = 0; i < cap->n; i++)
	{
		const char *block = cap->block[i];

		memset(nulls, false, sizeof(bool) * natts);
		values[0] = Int64GetDatum(cap->gid[i]);
		nulls[0] = (cap->gid[i] == 0);
		values[1] = BoolGetDatum(cap->live[i]);
		GroupKeyRead(layout, cap->key[i], values + 2, nulls + 2);
		for (int a = 0; a < layout->naggs; a++)
		{
			if (cap->live[i])
				AggFinalize(layout, a, block, &values[2 + layout->nkeys + a],
							&nulls[2 + layout->nkeys + a], NULL);
			else
				nulls[2 + layout->nkeys + a] = true;
		}
		tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
	}
	if (cap->hide_table)
	{
		memset(nulls, true, sizeof(bool) * natts);
		values[0] = Int64GetDatum(-1);
		nulls[0] = false;
		values[1] = BoolGetDatum(false);
		nulls[1] = false;
		tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
	}
	return (Datum) 0;
}
