/*-------------------------------------------------------------------------
 *
 * partial_state.c
 *	  A continuous view's groups as partial states in SQL, and the reads of
 *	  the view itself that finalize only the groups a query keeps.
 *
 * Wording: a *partial state* is a bytea that holds one group's aggregate
 * state (AggSerialize: what the state table's state column holds) behind a
 * header that names its view: a magic number, the version of the header,
 * the view's id (flowstate.view.view_id, kept by a dump) and a fingerprint
 * of the view's layout (the types and kinds of its keys and aggregates and
 * their places in the state block).  A state is read back (AggDeserialize)
 * only for the view its header names, and only if the layout is still the
 * one it was written with: a state of another view is refused, never
 * misread.
 *
 * What users call:
 *	- flowstate.partial_states(NULL::view): the view's groups, as the view
 *	  shows them (the state table's rows that shared memory holds no newer
 *	  state for, plus the groups of shared memory the reader's snapshot
 *	  takes), each as a row of the view's type holding the columns computed
 *	  from the group keys alone, and its partial state;
 *	- flowstate.combine(state): the aggregate that merges partial states of
 *	  one view (AggMerge) into one;
 *	- flowstate.finalize(state, NULL::view): a row of the view's type
 *	  holding the columns computed from the aggregates alone, with
 *	  PostgreSQL's own result types.
 *
 * What the view's SQL calls (QueryViewSql): flowstate.durable(), whether a
 * state table row is the newest state of its group the reader sees;
 * flowstate.unflushed_states(), the keys of the groups shared memory holds
 * and their place in the reader's capture; flowstate.unflushed_aggregates(),
 * the aggregates of one of them.  A condition on the keys is evaluated
 * before the aggregates are finalized.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "aggregates/aggregate.h"
#include "aggregates/aggregate_state.h"
#include "api/api.h"
#include "fs_catalog/security.h"
#include "query/query.h"
#include "state/group.h"
#include "state/state_table.h"

extern PGDLLEXPORT Datum flowstate_durable(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_durable);
extern PGDLLEXPORT Datum flowstate_unflushed_states(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_unflushed_states);
extern PGDLLEXPORT Datum flowstate_unflushed_aggregates(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_unflushed_aggregates);
extern PGDLLEXPORT Datum flowstate_partial_states(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_partial_states);
extern PGDLLEXPORT Datum flowstate_combine_step(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_combine_step);
extern PGDLLEXPORT Datum flowstate_combine_final(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_combine_final);
extern PGDLLEXPORT Datum flowstate_finalize(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_finalize);

/* The header of a partial state; AggSerialize's bytes follow. */
typedef struct PartialHeader
{
	uint32		magic;
	uint32		version;
	int32		view_id;
	uint32		fingerprint;
} PartialHeader;

#define PARTIAL_MAGIC	0x53504c46	/* "FLPS" */
#define PARTIAL_VERSION 1

#define PARTIAL_HINT "Pass the states of one continuous view, as flowstate.partial_states() and flowstate.combine() return them."

/* A continuous view, as the functions of this file need it; per call site. */
typedef struct ViewInfo
{
	int32		view_id;
	Oid			view_relid;
	Oid			def_relid;
	Oid			state_relid;
	uint32		fingerprint;
	ViewDef		def;
	/* the view's row type and, per column, how it is computed */
	Oid			rowtype;
	TupleDesc	rowdesc;
	TupleDesc	statedesc;		/* the state table's columns */
	ExprState **exprs;
	bool	   *reads_keys;
	bool	   *reads_aggs;
	ExprContext *econtext;
	TupleTableSlot *slot;
	AggRuntime *rt;
} ViewInfo;

/*
 * Load a continuous view by its view (kind 'v'), its state table ('s') or
 * its id ('i') into fn_mcxt; NULL if there is none.
 */
static ViewInfo *
load_view(char kind, Oid relid, int32 view_id, MemoryContext cxt)
{
	Oid			type = kind == 'i' ? INT4OID : OIDOID;
	Datum		arg = kind == 'i' ? Int32GetDatum(view_id) : ObjectIdGetDatum(relid);
	const char *where = kind == 'i' ? "view_id = $1" : kind == 'v' ? "view = $1" : "state_table = $1";
	ViewInfo   *info = NULL;
	Query	   *query;
	MemoryContext oldcxt;
	int			nest = SecurityRestrictSearchPath();

	SPI_connect();
	if (SPI_execute_with_args(psprintf("SELECT view_id, view::pg_catalog.oid,"
									   "       definition::pg_catalog.oid, state_table::pg_catalog.oid"
									   "  FROM flowstate.view WHERE %s", where),
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	if (SPI_processed == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		info = MemoryContextAllocZero(cxt, sizeof(ViewInfo));
		info->view_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		info->view_relid = DatumGetObjectId(SPI_getbinval(tuple, desc, 2, &isnull));
		info->def_relid = DatumGetObjectId(SPI_getbinval(tuple, desc, 3, &isnull));
		info->state_relid = DatumGetObjectId(SPI_getbinval(tuple, desc, 4, &isnull));
	}
	SPI_finish();
	SecurityRestoreSearchPath(nest);
	if (info == NULL)
		return NULL;

	oldcxt = MemoryContextSwitchTo(cxt);
	query = QueryOfDefinition(info->def_relid);
	if (query == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the definition of continuous view \"%s\" is missing",
						get_rel_name(info->view_relid)),
				 errhint("Drop the continuous view and create it again.")));
	QueryDescribe(query, &info->def);
	info->def.state_relid = info->state_relid;
	info->def.view_relid = info->view_relid;
	info->fingerprint = hash_bytes((const unsigned char *) &info->def.layout, sizeof(ViewLayout));
	info->rt = AggRuntimeCreate(&info->def.layout);
	MemoryContextSwitchTo(oldcxt);
	return info;
}

/* The continuous view whose row type is type, cached in fn_extra. */
static ViewInfo *
view_of_rowtype(FunctionCallInfo fcinfo, Oid type)
{
	ViewInfo   *info = fcinfo->flinfo->fn_extra;
	Oid			relid = type_is_rowtype(type) ? get_typ_typrelid(type) : InvalidOid;
	MemoryContext oldcxt;
	Relation	rel;

	if (info != NULL && info->rowtype == type)
		return info;
	if (OidIsValid(relid))
		info = load_view('v', relid, 0, fcinfo->flinfo->fn_mcxt);
	if (!OidIsValid(relid) || info == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("type %s is not the row type of a continuous view", format_type_be(type)),
				 errhint("Pass a NULL of the view's row type, as in NULL::my_view.")));

	/* the view's columns, over a row of its state table */
	oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	info->rowtype = type;
	info->rowdesc = lookup_rowtype_tupdesc_copy(type, -1);
	rel = table_open(info->state_relid, AccessShareLock);
	info->statedesc = CreateTupleDescCopy(RelationGetDescr(rel));
	table_close(rel, AccessShareLock);
	info->exprs = palloc0(sizeof(ExprState *) * Max(info->rowdesc->natts, 1));
	info->reads_keys = palloc0(sizeof(bool) * Max(info->rowdesc->natts, 1));
	info->reads_aggs = palloc0(sizeof(bool) * Max(info->rowdesc->natts, 1));
	for (int c = 0; c < info->rowdesc->natts; c++)
	{
		Expr	   *expr = QueryColumnExpr(&info->def, c, &info->reads_keys[c],
										   &info->reads_aggs[c]);

		if (expr == NULL || exprType((Node *) expr) != TupleDescAttr(info->rowdesc, c)->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("continuous view \"%s\" no longer has the columns of its definition",
							get_rel_name(info->view_relid)),
					 errhint("Drop the continuous view and create it again.")));
		info->exprs[c] = ExecInitExpr(expr, NULL);
	}
	info->econtext = CreateStandaloneExprContext();
	info->slot = MakeSingleTupleTableSlot(info->statedesc, &TTSOpsVirtual);
	MemoryContextSwitchTo(oldcxt);
	fcinfo->flinfo->fn_extra = info;
	return info;
}

/*
 * A row of the view's type: the columns computed from the group keys alone
 * (keys given) or from the aggregates alone (block given); the others NULL.
 */
static Datum
view_row(ViewInfo *info, const Datum *keys, const bool *keynulls, const char *block)
{
	const ViewLayout *layout = &info->def.layout;
	TupleTableSlot *slot = info->slot;
	int			natts = info->rowdesc->natts;
	Datum	   *values = palloc(sizeof(Datum) * Max(natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(natts, 1));

	ExecClearTuple(slot);
	for (int i = 0; i < slot->tts_tupleDescriptor->natts; i++)
		slot->tts_isnull[i] = true;
	if (keys != NULL)
	{
		for (int i = 0; i < layout->nkeys; i++)
		{
			slot->tts_values[1 + i] = keys[i];
			slot->tts_isnull[1 + i] = keynulls[i];
		}
	}
	else
	{
		for (int a = 0; a < layout->naggs; a++)
			AggFinalize(layout, a, block, &slot->tts_values[1 + layout->nkeys + a],
						&slot->tts_isnull[1 + layout->nkeys + a], NULL);
	}
	ExecStoreVirtualTuple(slot);
	info->econtext->ecxt_scantuple = slot;
	for (int c = 0; c < natts; c++)
	{
		bool		wanted = keys != NULL ? !info->reads_aggs[c] : !info->reads_keys[c];

		nulls[c] = true;
		values[c] = (Datum) 0;
		if (wanted)
			values[c] = ExecEvalExpr(info->exprs[c], info->econtext, &nulls[c]);
	}
	return HeapTupleGetDatum(heap_form_tuple(info->rowdesc, values, nulls));
}

/* A group's block as a partial state of its view. */
static bytea *
wrap_state(ViewInfo *info, const char *block)
{
	bytea	   *inner = AggSerialize(&info->def.layout, block);
	Size		len = VARSIZE_ANY_EXHDR(inner);
	bytea	   *state = palloc(VARHDRSZ + sizeof(PartialHeader) + len);
	PartialHeader header;

	header.magic = PARTIAL_MAGIC;
	header.version = PARTIAL_VERSION;
	header.view_id = info->view_id;
	header.fingerprint = info->fingerprint;
	SET_VARSIZE(state, VARHDRSZ + sizeof(PartialHeader) + len);
	memcpy(VARDATA(state), &header, sizeof(PartialHeader));
	memcpy(VARDATA(state) + sizeof(PartialHeader), VARDATA_ANY(inner), len);
	pfree(inner);
	return state;
}

/* The header of a partial state, refused if it is none. */
static PartialHeader
state_header(bytea *state)
{
	PartialHeader header;

	if (VARSIZE_ANY_EXHDR(state) < sizeof(PartialHeader))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid partial state of a continuous view"),
				 errhint(PARTIAL_HINT)));
	memcpy(&header, VARDATA_ANY(state), sizeof(PartialHeader));
	if (header.magic != PARTIAL_MAGIC || header.version != PARTIAL_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid partial state of a continuous view"),
				 errdetail("The state does not start with the header of a partial state of version %d.",
						   PARTIAL_VERSION),
				 errhint(PARTIAL_HINT)));
	return header;
}

/*
 * Whether the var fields of a block just read are values in line, not
 * compressed nor pointers to TOAST, that end within their memory (each is
 * palloc'd by AggDeserialize, as it says); and the values of min and max of
 * fixed-length types by reference as long as their wrapping.
 */
static bool
plain_vars(const ViewLayout *layout, const char *block)
{
	for (int i = 0; i < layout->nvars; i++)
	{
		Pointer		p = DatumGetPointer(*(const Datum *) (block + layout->var_offsets[i]));

		if (p == NULL)
			continue;
		if (VARATT_IS_EXTERNAL(p) || VARATT_IS_COMPRESSED(p) ||
			VARSIZE_ANY(p) > GetMemoryChunkSpace(p))
			return false;
	}
	for (int a = 0; a < layout->naggs; a++)
	{
		const AggSpec *spec = &layout->aggs[a];
		MinMaxFields *f;

		if ((spec->kind != AGG_MIN && spec->kind != AGG_MAX) || spec->valbyval ||
			spec->vallen <= 0)
			continue;
		f = FIELDS(MinMaxFields, block, spec);
		if ((f->flags & MM_HAS_VAL) && (f->val == (Datum) 0 ||
										VARSIZE_ANY(DatumGetPointer(f->val)) != MM_WRAP_HEADER + spec->vallen))
			return false;
	}
	return true;
}

/* Read a partial state of the view into block (local form), or refuse it. */
static void
unwrap_state(ViewInfo *info, bytea *state, char *block)
{
	PartialHeader header = state_header(state);
	Size		len = VARSIZE_ANY_EXHDR(state) - sizeof(PartialHeader);
	bytea	   *inner;
	bytea	   *again;
	const char *problem;
	int			format;

	if (header.view_id != info->view_id)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("partial state of another continuous view than \"%s\"",
						get_rel_name(info->view_relid)),
				 errdetail("The state belongs to the continuous view of id %d; \"%s\" has id %d.",
						   header.view_id, get_rel_name(info->view_relid), info->view_id),
				 errhint(PARTIAL_HINT)));
	if (header.fingerprint != info->fingerprint)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("partial state of continuous view \"%s\" written for another layout",
						get_rel_name(info->view_relid)),
				 errdetail("The view was dropped and created again, or its state was written by another version of flowstate."),
				 errhint(PARTIAL_HINT)));
	inner = palloc(VARHDRSZ + len);
	SET_VARSIZE(inner, VARHDRSZ + len);
	memcpy(VARDATA(inner), VARDATA_ANY(state) + sizeof(PartialHeader), len);
	problem = AggDecode(&info->def.layout, inner, block, &format);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid partial state of a continuous view"),
				 errdetail("The state of continuous view \"%s\" cannot be read: %s.",
						   get_rel_name(info->view_relid), problem),
				 errhint(PARTIAL_HINT)));

	/*
	 * Anyone may pass any bytes: only a state whose var fields are plain
	 * values within their memory, and that serializes back to itself, as
	 * every state flowstate writes does, is read on.
	 */
	if (!plain_vars(&info->def.layout, block))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid partial state of a continuous view"),
				 errdetail("The state of continuous view \"%s\" is not one flowstate wrote.",
						   get_rel_name(info->view_relid)),
				 errhint(PARTIAL_HINT)));
	again = AggSerialize(&info->def.layout, block);
	if (VARSIZE(again) != VARSIZE(inner) ||
		memcmp(VARDATA(again), VARDATA(inner), len) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid partial state of a continuous view"),
				 errdetail("The state of continuous view \"%s\" is not one flowstate wrote.",
						   get_rel_name(info->view_relid)),
				 errhint(PARTIAL_HINT)));
	pfree(again);
	pfree(inner);
}

/* The capture of a state table's view, its layout checked against info's. */
static Capture *
checked_capture(FunctionCallInfo fcinfo, Oid state_relid, ViewInfo *info)
{
	Capture    *cap = ApiCapture(state_relid, fcinfo->flinfo->fn_mcxt, NULL);

	if (cap != NULL && info != NULL &&
		memcmp(&cap->layout, &info->def.layout, sizeof(ViewLayout)) != 0)
		elog(ERROR, "continuous view \"%s\" has another layout in shared memory",
			 get_rel_name(info->view_relid));
	return cap;
}

/*
 * The key conditions a read passes after the first arguments of
 * flowstate.durable() and flowstate.unflushed_states() (read_filter.c): the
 * values of the view's keys but the window, in key order.  Sets *hash to
 * their part hash and returns true; false without conditions.  *none is set
 * when a value is NULL: no group has it.
 */
static bool
key_filter(FunctionCallInfo fcinfo, int first, Oid state_relid, uint32 *hash, bool *none)
{
	ViewLayout *layout = fcinfo->flinfo->fn_extra;
	Datum		values[FLOWSTATE_MAX_KEYS];
	bool		isnull[FLOWSTATE_MAX_KEYS];
	int			arg = first;

	*none = false;
	if (PG_NARGS() <= first)
		return false;
	if (layout == NULL)
	{
		StoreKey	key = {MyDatabaseId, state_relid};

		layout = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(ViewLayout));
		if (!StoreViewLayout(key, layout))
			return false;		/* no writer: nothing in shared memory */
		fcinfo->flinfo->fn_extra = layout;
	}
	if (!GroupKeyPartIndexable(layout))
		return false;
	for (int i = 0; i < layout->nkeys; i++)
	{
		const KeySpec *k = &layout->keys[i];

		isnull[i] = true;
		values[i] = (Datum) 0;
		if (k->is_window)
			continue;
		if (arg >= PG_NARGS())
			elog(ERROR, "flowstate key condition without a value for key %d", i + 1);
		if (get_typlen(get_fn_expr_argtype(fcinfo->flinfo, arg)) != k->typlen)
			elog(ERROR, "flowstate key condition of another type than key %d", i + 1);
		if (PG_ARGISNULL(arg))
			*none = true;
		else
		{
			isnull[i] = false;
			values[i] = k->typlen == -1 ?
				PointerGetDatum(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(arg))) :
				PG_GETARG_DATUM(arg);
		}
		arg++;
	}
	*hash = GroupKeyPartHash(layout, values, isnull);
	return true;
}

/*
 * flowstate_durable(state_table, gid [, keys...]) tells whether a row of a
 * state table is the newest state of its group that the caller's snapshot
 * sees: shared memory holds no newer one, and no TRUNCATE the snapshot does
 * not see flushed empties the table.  With the values of the keys but the
 * window (read_filter.c), for rows of those keys only.
 */
Datum
flowstate_durable(PG_FUNCTION_ARGS)
{
	uint32		hash;
	bool		none;
	bool		filtered = key_filter(fcinfo, 2, PG_GETARG_OID(0), &hash, &none);
	Capture    *cap;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || none)
		PG_RETURN_BOOL(true);	/* a condition fails already */
	cap = ApiCapture(PG_GETARG_OID(0), fcinfo->flinfo->fn_mcxt, filtered ? &hash : NULL);
	if (cap == NULL)
		PG_RETURN_BOOL(true);
	if (cap->hide_table)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(!ApiCaptureHolds(cap, PG_GETARG_INT64(1)));
}

/*
 * flowstate_unflushed_states(state_table [, keys...]) returns the groups of
 * a continuous view whose newest state the caller's snapshot does not see
 * in its state table: gid, live, keys k1..kn, and the group's place in the
 * caller's capture, for flowstate.unflushed_aggregates().  With the values
 * of the keys but the window (read_filter.c), at least the groups of those
 * keys (the caller's condition picks them), found by them.
 */
Datum
flowstate_unflushed_states(PG_FUNCTION_ARGS)
{
	Oid			relid;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Capture    *cap;
	const ViewLayout *layout;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	int			natts;
	uint32		hash;
	bool		none;
	bool		filtered;
	int32		number;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	filtered = key_filter(fcinfo, 1, relid, &hash, &none);
	if (none)
		PG_RETURN_NULL();
	cap = ApiCapture(relid, fcinfo->flinfo->fn_mcxt, filtered ? &hash : NULL);
	if (cap == NULL)
		PG_RETURN_NULL();

	layout = &cap->layout;
	desc = rsinfo->setDesc;
	natts = 3 + layout->nkeys;
	if (desc->natts != natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("flowstate.unflushed_states() of this view returns %d columns, not %d",
						natts, desc->natts),
				 errhint("Read the continuous view itself, or flowstate.partial_states().")));
	values = palloc(sizeof(Datum) * natts);
	nulls = palloc(sizeof(bool) * natts);
	number = ApiCaptureNumber(cap);
	for (int i = 0; i < cap->n; i++)
	{
		memset(nulls, false, sizeof(bool) * natts);
		values[0] = Int64GetDatum(cap->gid[i]);
		nulls[0] = (cap->gid[i] == 0);
		values[1] = BoolGetDatum(cap->live[i]);
		GroupKeyRead(layout, cap->key[i], values + 2, nulls + 2);
		values[natts - 1] = Int64GetDatum(((int64) number << 32) | i);
		tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * flowstate_unflushed_aggregates(state_table, i) returns the aggregates
 * a1..am of group i of flowstate.unflushed_states() (the number of the
 * caller's capture, and the group's place in it), finalized.
 */
Datum
flowstate_unflushed_aggregates(PG_FUNCTION_ARGS)
{
	Capture    *cap = ApiCaptureNumbered((int32) (PG_GETARG_INT64(1) >> 32));
	int64		i = PG_GETARG_INT64(1) & 0xFFFFFFFF;
	TupleDesc	desc = fcinfo->flinfo->fn_extra;
	const ViewLayout *layout;
	Datum		values[FLOWSTATE_MAX_AGGS];
	bool		nulls[FLOWSTATE_MAX_AGGS];

	if (cap == NULL || i < 0 || i >= cap->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no group " INT64_FORMAT " in the shared memory this query reads", PG_GETARG_INT64(1)),
				 errhint("Read the continuous view itself, or flowstate.partial_states().")));
	layout = &cap->layout;
	if (desc == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "flowstate.unflushed_aggregates() called without a column definition list");
		desc = BlessTupleDesc(CreateTupleDescCopy(desc));
		MemoryContextSwitchTo(oldcxt);
		fcinfo->flinfo->fn_extra = desc;
	}
	if (desc->natts != layout->naggs)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("flowstate.unflushed_aggregates() of this view returns %d columns, not %d",
						layout->naggs, desc->natts),
				 errhint("Read the continuous view itself, or flowstate.partial_states().")));
	for (int a = 0; a < layout->naggs; a++)
	{
		if (cap->live[i])
			AggFinalize(layout, a, cap->block[i], &values[a], &nulls[a], NULL);
		else
			nulls[a] = true;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * flowstate_partial_states(NULL::view) returns the groups of a continuous
 * view as the view shows them: per group, keys, a row of the view's type
 * with the columns computed from the group keys alone, and state, its
 * partial state.
 */
Datum
flowstate_partial_states(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ViewInfo   *info = view_of_rowtype(fcinfo, get_fn_expr_argtype(fcinfo->flinfo, 0));
	const ViewLayout *layout = &info->def.layout;
	Capture    *cap;
	StateScan	scan;
	StateRow	row;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	MemoryContext rowcxt;
	MemoryContext oldcxt;

	InitMaterializedSRF(fcinfo, 0);
	ApiCheckReader(info->view_relid, info->state_relid, info->def_relid);
	cap = checked_capture(fcinfo, info->state_relid, info);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate partial states",
								   ALLOCSET_DEFAULT_SIZES);

	/* the state table's rows that are the newest state the snapshot sees */
	if ((cap == NULL || !cap->hide_table) &&
		StateScanBegin(&scan, info->state_relid, layout, false))
	{
		for (;;)
		{
			oldcxt = MemoryContextSwitchTo(rowcxt);
			if (!StateScanNext(&scan, &row))
			{
				MemoryContextSwitchTo(oldcxt);
				break;
			}
			if (cap == NULL || !ApiCaptureHolds(cap, row.gid))
			{
				values[0] = view_row(info, row.keys, row.keynulls, NULL);
				values[1] = PointerGetDatum(wrap_state(info, row.block));
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(rowcxt);
		}
		StateScanEnd(&scan);
	}

	/* and the groups of shared memory */
	for (int i = 0; cap != NULL && i < cap->n; i++)
	{
		Datum		keys[FLOWSTATE_MAX_KEYS];
		bool		keynulls[FLOWSTATE_MAX_KEYS];

		if (!cap->live[i])
			continue;
		oldcxt = MemoryContextSwitchTo(rowcxt);
		GroupKeyRead(layout, cap->key[i], keys, keynulls);
		values[0] = view_row(info, keys, keynulls, NULL);
		values[1] = PointerGetDatum(wrap_state(info, cap->block[i]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	MemoryContextDelete(rowcxt);
	return (Datum) 0;
}

/* The running merge of flowstate.combine(), in the aggregate's context. */
typedef struct CombineState
{
	ViewInfo   *info;
	char	   *block;
} CombineState;

/*
 * flowstate_combine_step adds a partial state to the merge of a group of
 * flowstate.combine(); every state must be of the same view.
 */
Datum
flowstate_combine_step(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MemoryContext oldcxt;
	CombineState *cs = PG_ARGISNULL(0) ? NULL : (CombineState *) PG_GETARG_POINTER(0);
	bytea	   *state;
	PartialHeader header;
	ViewInfo   *info;
	char	   *block;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("flowstate.combine_step() can only be called by flowstate.combine()"),
				 errhint("Call the aggregate flowstate.combine(state).")));
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(cs);
	state = PG_GETARG_BYTEA_PP(1);
	header = state_header(state);

	/* the view of the first state, kept for the whole query */
	info = fcinfo->flinfo->fn_extra;
	if (cs != NULL)
		info = cs->info;
	else if (info == NULL || info->view_id != header.view_id)
	{
		info = load_view('i', InvalidOid, header.view_id, fcinfo->flinfo->fn_mcxt);
		if (info == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("partial state of continuous view of id %d, which does not exist",
							header.view_id),
					 errhint(PARTIAL_HINT)));
		fcinfo->flinfo->fn_extra = info;
	}
	if (cs != NULL && header.view_id != info->view_id)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cannot combine partial states of different continuous views"),
				 errdetail("A state of the view of id %d follows states of \"%s\", of id %d.",
						   header.view_id, get_rel_name(info->view_relid), info->view_id),
				 errhint(PARTIAL_HINT)));

	/* var fields of a merge may point into the merged state: both live on */
	oldcxt = MemoryContextSwitchTo(aggcxt);
	block = palloc(info->def.layout.block_size);
	unwrap_state(info, state, block);
	if (cs == NULL)
	{
		cs = palloc(sizeof(CombineState));
		cs->info = info;
		cs->block = block;
	}
	else if (!AggMerge(info->rt, cs->block, block))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("partial states of continuous view \"%s\" do not combine",
						get_rel_name(info->view_relid)),
				 errdetail("A state of the view holds fewer rows than none."),
				 errhint(PARTIAL_HINT)));
	MemoryContextSwitchTo(oldcxt);
	PG_RETURN_POINTER(cs);
}

/*
 * flowstate_combine_final returns the merge of flowstate.combine() as a
 * partial state of its view, NULL without states.
 */
Datum
flowstate_combine_final(PG_FUNCTION_ARGS)
{
	CombineState *cs = PG_ARGISNULL(0) ? NULL : (CombineState *) PG_GETARG_POINTER(0);

	if (cs == NULL)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(wrap_state(cs->info, cs->block));
}

/*
 * flowstate_finalize(state, NULL::view) returns a row of the view's type
 * holding the columns the view computes from its aggregates alone over the
 * partial state (the others are NULL); NULL for a NULL state.
 */
Datum
flowstate_finalize(PG_FUNCTION_ARGS)
{
	ViewInfo   *info = view_of_rowtype(fcinfo, get_fn_expr_argtype(fcinfo->flinfo, 1));
	char	   *block;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	block = palloc(info->def.layout.block_size);
	unwrap_state(info, PG_GETARG_BYTEA_PP(0), block);
	ResetExprContext(info->econtext);
	PG_RETURN_DATUM(view_row(info, NULL, NULL, block));
}
