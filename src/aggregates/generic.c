/*-------------------------------------------------------------------------
 *
 * generic.c
 *	  Aggregates flowstate has no native form of, kept through PostgreSQL's
 *	  own support functions (AGG_GENERIC): any aggregate whose pg_aggregate
 *	  entry has a combine function, user-defined ones and those of other
 *	  extensions (hll, tdigest) included.
 *
 * A group keeps the aggregate's transition state, as nodeAgg.c would in a
 * partial aggregation: its transition function adds a row's arguments to
 * it, its combine function adds a delta's state to a group's, its final
 * function gives the result.  In a block (GenericFields) the state is
 *
 *	- absent (no GEN_HAS_STATE): the initial state, the aggregate's
 *	  initial condition or, without one, no state yet;
 *	- a by-value transition type: the Datum itself;
 *	- any other type: a var field, a varlena in the local form: the value
 *	  itself (expanded objects flattened), a fixed-length one wrapped as
 *	  min/max values are (aggregate_state.h), an internal state as its
 *	  serialization function's bytea.  0 there is a NULL state.
 *
 * Each operation rebuilds the state it needs from that form, in a memory
 * context of its own that is reset after it, and copies what it keeps out.
 * The support functions are called as nodeAgg.c calls them: in an
 * aggregate context (a WindowAggState whose aggregate memory is that
 * context), with strictness handled as nodeAgg.c handles it, with the
 * expressions of their argument types (polymorphic aggregates).
 *
 * Transition states cannot take inputs back: a moving-aggregate inverse
 * works on a state of another type, which has no combine function.  A
 * delta that removes inputs counts them (ndeleted), and AggMerge has the
 * group recomputed from its table; streams never remove inputs.
 *
 * A support function written in a language other than internal or C runs
 * as the role that owns it, in a restricted, read-only security context,
 * under a snapshot, as PostgreSQL runs a view owner's functions in REFRESH
 * MATERIALIZED VIEW: it never gains the rights of the worker or of the
 * role that reads the view.  Any support function may read the catalog
 * (a type cache, an enum's order), so each runs in a transaction: the
 * engine merges the groups of views with generic aggregates in one
 * (AggRuntime.needs_xact).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "parser/parse_agg.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/expandeddatum.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "aggregates/aggregate.h"
#include "aggregates/aggregate_state.h"

/* A support function, looked up once per backend. */
typedef struct GenericFn
{
	FmgrInfo	flinfo;
	bool		present;
	Oid			run_as;			/* its owner, if not internal or C */
} GenericFn;

/* What a backend knows of one generic aggregate call. */
typedef struct GenericInfo
{
	/* the key: the aggregate and its argument types */
	Oid			aggfnoid;
	int			nargs;
	Oid			argtypes[FLOWSTATE_MAX_GENERIC_ARGS];
	Oid			inputcollid;
	Oid			restype;

	Oid			transtype;
	int16		translen;
	bool		transbyval;
	Datum		initval;
	bool		initnull;
	int			nfinalargs;
	int16		reslen;
	bool		resbyval;
	GenericFn	trans;
	GenericFn	combine;
	GenericFn	serial;
	GenericFn	deserial;
	GenericFn	final;
	struct GenericInfo *next;
} GenericInfo;

static GenericInfo *known = NULL;
static MemoryContext info_cxt = NULL;	/* where they live */
static MemoryContext generic_cxt = NULL;	/* the aggregate memory of a call */
static WindowAggState *agg_context = NULL;

/*
 * AggGenericRefusal tells why an aggregate cannot be kept through its
 * support functions (NULL: it can), for the error of create_view.
 */
const char *
AggGenericRefusal(Oid aggfnoid, int nargs)
{
	HeapTuple	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	Form_pg_aggregate agg;
	const char *why = NULL;

	if (!HeapTupleIsValid(tup))
		return "it is not an aggregate";
	agg = (Form_pg_aggregate) GETSTRUCT(tup);
	if (!OidIsValid(agg->aggcombinefn))
		why = "it has no combine function";
	else if (agg->aggtranstype == INTERNALOID &&
			 (!OidIsValid(agg->aggserialfn) || !OidIsValid(agg->aggdeserialfn)))
		why = "its internal transition state has no serialization functions";
	else if (nargs > FLOWSTATE_MAX_GENERIC_ARGS)
		why = psprintf("it takes more than %d arguments", FLOWSTATE_MAX_GENERIC_ARGS);
	else if (agg->aggtranstype != INTERNALOID && get_typlen(agg->aggtranstype) == -2)
		why = "its transition state is a cstring";
	ReleaseSysCache(tup);
	return why;
}

/* AggGenericTransType: the transition type of a generic aggregate call. */
Oid
AggGenericTransType(const AggSpec *spec)
{
	HeapTuple	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(spec->aggfnoid));
	Oid			transtype;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", spec->aggfnoid);
	transtype = resolve_aggregate_transtype(spec->aggfnoid,
											((Form_pg_aggregate) GETSTRUCT(tup))->aggtranstype,
											(Oid *) spec->argtypes, spec->nargs);
	ReleaseSysCache(tup);
	return transtype;
}

/* Look a support function up in the cache's memory, with its call expression. */
static void
fn_init(GenericFn *fn, Oid fnoid, Expr *expr, Oid aggowner)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	AclResult	aclresult;

	fn->present = OidIsValid(fnoid);
	if (!fn->present)
		return;
	/* as nodeAgg.c: the aggregate's owner may call it */
	aclresult = pg_proc_aclcheck(fnoid, aggowner, ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(fnoid));
	fmgr_info_cxt(fnoid, &fn->flinfo, info_cxt);
	if (expr)
		fmgr_info_set_expr((Node *) copyObjectImpl(expr), &fn->flinfo);
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fnoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fnoid);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	fn->run_as = (proc->prolang == INTERNALlanguageId || proc->prolang == ClanguageId) ?
		InvalidOid : proc->proowner;
	ReleaseSysCache(tup);
}

static Oid
func_owner(Oid fnoid)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fnoid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fnoid);
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);
	return owner;
}

/* The initial condition, in the transition type (nodeAgg.c's GetAggInitVal). */
static Datum
init_value(Datum textval, Oid transtype)
{
	Oid			typinput;
	Oid			typioparam;
	char	   *str = TextDatumGetCString(textval);

	getTypeInputInfo(transtype, &typinput, &typioparam);
	return OidInputFunctionCall(typinput, str, typioparam, -1);
}

/* Build what a backend needs to call an aggregate's support functions. */
static GenericInfo *
info_build(const AggSpec *spec)
{
	MemoryContext oldcxt;
	HeapTuple	tup;
	Form_pg_aggregate agg;
	GenericInfo *gi;
	Oid			aggowner;
	Datum		initcond;
	Expr	   *transexpr;
	Expr	   *combineexpr;
	Expr	   *serialexpr = NULL;
	Expr	   *deserialexpr = NULL;
	Expr	   *finalexpr = NULL;
	Oid			finalfn;

	if (info_cxt == NULL)
		info_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate generic aggregate functions",
										 ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(info_cxt);
	gi = palloc0(sizeof(GenericInfo));
	gi->aggfnoid = spec->aggfnoid;
	gi->nargs = spec->nargs;
	memcpy(gi->argtypes, spec->argtypes, sizeof(gi->argtypes));
	gi->inputcollid = spec->inputcollid;
	gi->restype = spec->restype;

	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(spec->aggfnoid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("aggregate function %u of a continuous view no longer exists",
						spec->aggfnoid),
				 errhint("Drop the continuous view with flowstate.drop_view().")));
	agg = (Form_pg_aggregate) GETSTRUCT(tup);
	aggowner = func_owner(spec->aggfnoid);
	gi->transtype = resolve_aggregate_transtype(spec->aggfnoid, agg->aggtranstype,
												gi->argtypes, gi->nargs);
	get_typlenbyval(gi->transtype, &gi->translen, &gi->transbyval);
	initcond = SysCacheGetAttr(AGGFNOID, tup, Anum_pg_aggregate_agginitval, &gi->initnull);
	if (!gi->initnull)
		gi->initval = init_value(initcond, gi->transtype);
	gi->nfinalargs = agg->aggfinalextra ? gi->nargs + 1 : 1;
	get_typlenbyval(gi->restype, &gi->reslen, &gi->resbyval);

	build_aggregate_transfn_expr(gi->argtypes, gi->nargs, 0, false, gi->transtype,
								 gi->inputcollid, agg->aggtransfn, InvalidOid,
								 &transexpr, NULL);
	/* as nodeAgg.c: a combine function is a transition function of the state */
	build_aggregate_transfn_expr(&gi->transtype, 1, 0, false, gi->transtype,
								 gi->inputcollid, agg->aggcombinefn, InvalidOid,
								 &combineexpr, NULL);
	if (OidIsValid(agg->aggserialfn))
		build_aggregate_serialfn_expr(agg->aggserialfn, &serialexpr);
	if (OidIsValid(agg->aggdeserialfn))
		build_aggregate_deserialfn_expr(agg->aggdeserialfn, &deserialexpr);
	finalfn = agg->aggfinalfn;
	if (OidIsValid(finalfn))
		build_aggregate_finalfn_expr(gi->argtypes, gi->nfinalargs, gi->transtype,
									 gi->restype, gi->inputcollid, finalfn, &finalexpr);
	fn_init(&gi->trans, agg->aggtransfn, transexpr, aggowner);
	fn_init(&gi->combine, agg->aggcombinefn, combineexpr, aggowner);
	if (gi->transtype == INTERNALOID)
	{
		fn_init(&gi->serial, agg->aggserialfn, serialexpr, aggowner);
		fn_init(&gi->deserial, agg->aggdeserialfn, deserialexpr, aggowner);
	}
	fn_init(&gi->final, finalfn, finalexpr, aggowner);
	ReleaseSysCache(tup);

	if (!gi->combine.present ||
		(gi->transtype == INTERNALOID && (!gi->serial.present || !gi->deserial.present)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate function %s of a continuous view can no longer be combined",
						format_procedure(spec->aggfnoid)),
				 errhint("Drop the continuous view with flowstate.drop_view().")));

	gi->next = known;
	known = gi;
	MemoryContextSwitchTo(oldcxt);
	return gi;
}

static GenericInfo *
info_of(const AggSpec *spec)
{
	for (GenericInfo *gi = known; gi; gi = gi->next)
		if (gi->aggfnoid == spec->aggfnoid && gi->nargs == spec->nargs &&
			gi->inputcollid == spec->inputcollid && gi->restype == spec->restype &&
			memcmp(gi->argtypes, spec->argtypes, sizeof(gi->argtypes)) == 0)
			return gi;
	return info_build(spec);
}

/*
 * AggGenericPrepare looks up the support functions of a layout's generic
 * aggregates; returns whether one of them is written in a language other
 * than internal or C (the rows of the view are then evaluated in
 * subtransactions, projection.c).
 */
bool
AggGenericPrepare(const ViewLayout *layout)
{
	bool		needs = false;

	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *spec = &layout->aggs[i];
		GenericInfo *gi;

		if (spec->kind != AGG_GENERIC)
			continue;
		gi = info_of(spec);
		needs |= OidIsValid(gi->trans.run_as) || OidIsValid(gi->combine.run_as) ||
			OidIsValid(gi->serial.run_as) || OidIsValid(gi->deserial.run_as) ||
			OidIsValid(gi->final.run_as);
	}
	return needs;
}

/* Start an operation: the aggregate memory, emptied. */
static void
op_begin(void)
{
	if (generic_cxt == NULL)
	{
		generic_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate generic aggregates",
											ALLOCSET_DEFAULT_SIZES);
		agg_context = MemoryContextAllocZero(TopMemoryContext, sizeof(WindowAggState));
		agg_context->ss.ps.type = T_WindowAggState;
		agg_context->curaggcontext = generic_cxt;
	}
	MemoryContextReset(generic_cxt);
}

/* Call a support function as nodeAgg.c does: in the aggregate context. */
static Datum
call(GenericFn *fn, Oid collation, int nargs, const Datum *args, const bool *nulls,
	 bool *isnull)
{
	LOCAL_FCINFO(fcinfo, FUNC_MAX_ARGS);
	MemoryContext oldcxt = MemoryContextSwitchTo(generic_cxt);
	Oid			saved_user = InvalidOid;
	int			saved_sec = 0;
	bool		saved_ro = XactReadOnly;
	bool		pushed = false;
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, &fn->flinfo, nargs, collation,
							 (Node *) agg_context, NULL);
	for (int i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = nulls[i];
	}
	if (OidIsValid(fn->run_as))
	{
		if (!IsTransactionState())
			elog(ERROR, "a support function of an aggregate called outside a transaction");
		GetUserIdAndSecContext(&saved_user, &saved_sec);
		SetUserIdAndSecContext(fn->run_as, saved_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		XactReadOnly = true;
		if (!ActiveSnapshotSet())
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			pushed = true;
		}
	}
	result = FunctionCallInvoke(fcinfo);
	if (OidIsValid(fn->run_as))
	{
		if (pushed)
			PopActiveSnapshot();
		XactReadOnly = saved_ro;
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	*isnull = fcinfo->isnull;
	MemoryContextSwitchTo(oldcxt);
	return result;
}

/*
 * The transition state a block holds, rebuilt in the aggregate memory
 * (*absent: none yet, the initial state).
 */
static Datum
load_state(GenericInfo *gi, const AggSpec *spec, const GenericFields *f, bool *isnull,
		   bool *absent)
{
	MemoryContext oldcxt;
	Datum		result;

	*absent = !(f->flags & GEN_HAS_STATE);
	*isnull = false;
	if (*absent)
	{
		*isnull = gi->initnull;
		if (gi->initnull)
			return (Datum) 0;
		oldcxt = MemoryContextSwitchTo(generic_cxt);
		result = datumCopy(gi->initval, gi->transbyval, gi->translen);
		MemoryContextSwitchTo(oldcxt);
		return result;
	}
	if (spec->valbyval)
		return f->state;
	if (f->state == (Datum) 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (gi->transtype == INTERNALOID)
	{
		Datum		args[2] = {f->state, (Datum) 0};
		bool		nulls[2] = {false, false};

		return call(&gi->deserial, InvalidOid, 2, args, nulls, isnull);
	}
	oldcxt = MemoryContextSwitchTo(generic_cxt);
	if (gi->translen == -1)
		result = PointerGetDatum(PG_DETOAST_DATUM_COPY(f->state));
	else
		result = datumCopy(PointerGetDatum(DatumGetPointer(f->state) + MM_WRAP_HEADER),
						   false, gi->translen);
	MemoryContextSwitchTo(oldcxt);
	return result;
}

/* The form a block keeps a transition state in, in CurrentMemoryContext. */
static void
save_state(GenericInfo *gi, const AggSpec *spec, Datum state, bool isnull, GenericFields *out)
{
	out->flags = GEN_HAS_STATE;
	out->state = (Datum) 0;
	if (isnull)
		return;
	if (spec->valbyval)
	{
		out->state = state;
		return;
	}
	if (gi->transtype == INTERNALOID)
	{
		bool		snull;
		Datum		bytes = call(&gi->serial, InvalidOid, 1, &state, &isnull, &snull);

		if (!snull)
			out->state = PointerGetDatum(PG_DETOAST_DATUM_COPY(bytes));
		return;
	}
	if (gi->translen == -1)
	{
		/* flattened if expanded, with a 4-byte header */
		if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(state)))
			out->state = datumCopy(state, false, -1);
		else
			out->state = PointerGetDatum(PG_DETOAST_DATUM_COPY(state));
		return;
	}
	{
		char	   *wrapped = palloc0(MM_WRAP_HEADER + gi->translen);

		SET_VARSIZE(wrapped, MM_WRAP_HEADER + gi->translen);
		memcpy(wrapped + MM_WRAP_HEADER, DatumGetPointer(state), gi->translen);
		out->state = PointerGetDatum(wrapped);
	}
}

/*
 * AggGenericAdvance computes into *out what adding one row (its arguments
 * args, nulls) to a block's state gives, as nodeAgg.c's transition does,
 * in CurrentMemoryContext; the block is left as it was, so that a row whose
 * transition fails changes nothing.  Returns false if the row changes
 * nothing (a strict transition function and a NULL argument).
 */
bool
AggGenericAdvance(const AggSpec *spec, const char *block, const Datum *args,
				  const bool *nulls, GenericFields *out)
{
	GenericInfo *gi = info_of(spec);
	const GenericFields *f = FIELDS(GenericFields, block, spec);
	Datum		fargs[FLOWSTATE_MAX_GENERIC_ARGS + 1];
	bool		fnulls[FLOWSTATE_MAX_GENERIC_ARGS + 1];
	Datum		state;
	bool		isnull;
	bool		absent;
	bool		rnull;

	if (gi->trans.flinfo.fn_strict)
	{
		for (int i = 0; i < spec->nargs; i++)
			if (nulls[i])
				return false;
	}
	op_begin();
	*out = *f;
	state = load_state(gi, spec, f, &isnull, &absent);
	if (gi->trans.flinfo.fn_strict && isnull)
	{
		if (!absent)
			return false;		/* a NULL state stays NULL */
		/* the first input is the state (CREATE AGGREGATE checked its type) */
		save_state(gi, spec, args[0], false, out);
		out->ndeleted = f->ndeleted;
		return true;
	}
	fargs[0] = state;
	fnulls[0] = isnull;
	for (int i = 0; i < spec->nargs; i++)
	{
		fargs[i + 1] = args[i];
		fnulls[i + 1] = nulls[i];
	}
	state = call(&gi->trans, gi->inputcollid, spec->nargs + 1, fargs, fnulls, &rnull);
	save_state(gi, spec, state, rnull, out);
	out->ndeleted = f->ndeleted;
	return true;
}

/*
 * AggGenericCombine adds the state of block d to that of block t (the
 * combine function), in CurrentMemoryContext, and their removed inputs.
 */
void
AggGenericCombine(const AggSpec *spec, char *t, const char *d)
{
	GenericInfo *gi = info_of(spec);
	GenericFields *tf = FIELDS(GenericFields, t, spec);
	const GenericFields *df = FIELDS(GenericFields, d, spec);
	int64		ndeleted = tf->ndeleted + df->ndeleted;
	Datum		args[2];
	bool		nulls[2];
	bool		tabsent;
	bool		dabsent;
	bool		rnull;
	Datum		result;

	/* a group in error stays so (until rows leave it: recomputed) */
	if ((tf->flags | df->flags) & GEN_FAILED)
	{
		tf->flags |= GEN_FAILED;
		tf->ndeleted = ndeleted;
		return;
	}
	if (!(df->flags & GEN_HAS_STATE))
	{
		tf->ndeleted = ndeleted;
		return;
	}
	if (!(tf->flags & GEN_HAS_STATE))
	{
		tf->flags = df->flags;
		tf->state = (df->state == (Datum) 0 || spec->valbyval) ? df->state :
			datumCopy(df->state, false, -1);
		tf->ndeleted = ndeleted;
		return;
	}
	op_begin();
	args[0] = load_state(gi, spec, tf, &nulls[0], &tabsent);
	args[1] = load_state(gi, spec, df, &nulls[1], &dabsent);
	if (gi->combine.flinfo.fn_strict && (nulls[0] || nulls[1]))
	{
		/* as nodeAgg.c: a NULL side adds nothing; a NULL target takes the other */
		if (nulls[0] && !nulls[1])
			save_state(gi, spec, args[1], false, tf);
		tf->ndeleted = ndeleted;
		return;
	}
	if (OidIsValid(gi->combine.run_as) || OidIsValid(gi->serial.run_as) ||
		OidIsValid(gi->deserial.run_as))
	{
		/* functions of other languages: their errors are the caller's */
		result = call(&gi->combine, gi->inputcollid, 2, args, nulls, &rnull);
		save_state(gi, spec, result, rnull, tf);
	}
	else
	{
		/*
		 * A C function's error (a sum out of its type's range) puts the
		 * group in error, as a float sum that overflows: its reads fail,
		 * and so does the batch query; the worker goes on.
		 */
		MemoryContext cxt = CurrentMemoryContext;
		GenericFields combined = *tf;

		PG_TRY();
		{
			result = call(&gi->combine, gi->inputcollid, 2, args, nulls, &rnull);
			save_state(gi, spec, result, rnull, &combined);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			combined.flags |= GEN_FAILED;
		}
		PG_END_TRY();
		*tf = combined;
	}
	tf->ndeleted = ndeleted;
}

/*
 * AggGenericFail puts a block's generic aggregates in error: a row its
 * recompute cannot add, which alone it can (AggGenericAdvance), fails the
 * group as a whole, as it fails the batch query.
 */
void
AggGenericFail(const ViewLayout *layout, char *block)
{
	for (int i = 0; i < layout->naggs; i++)
		if (layout->aggs[i].kind == AGG_GENERIC)
			FIELDS(GenericFields, block, &layout->aggs[i])->flags |= GEN_FAILED;
}

/*
 * AggGenericFinalize gives the aggregate's result for a block's state, in
 * CurrentMemoryContext.
 */
void
AggGenericFinalize(const AggSpec *spec, const char *block, Datum *value, bool *isnull)
{
	GenericInfo *gi = info_of(spec);
	const GenericFields *f = FIELDS(GenericFields, block, spec);
	Datum		args[FLOWSTATE_MAX_GENERIC_ARGS + 1];
	bool		nulls[FLOWSTATE_MAX_GENERIC_ARGS + 1];
	bool		absent;
	Datum		result;

	op_begin();
	args[0] = load_state(gi, spec, f, &nulls[0], &absent);
	if (!gi->final.present)
	{
		result = args[0];
		*isnull = nulls[0];
	}
	else if (gi->final.flinfo.fn_strict && nulls[0])
	{
		result = (Datum) 0;
		*isnull = true;
	}
	else
	{
		for (int i = 1; i < gi->nfinalargs; i++)
		{
			args[i] = (Datum) 0;
			nulls[i] = true;
		}
		result = call(&gi->final, gi->inputcollid, gi->nfinalargs, args, nulls, isnull);
	}
	*value = *isnull ? (Datum) 0 : datumCopy(result, gi->resbyval, gi->reslen);
}
