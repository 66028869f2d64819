/*-------------------------------------------------------------------------
 *
 * aggregate_spec.c
 *	  Which PostgreSQL aggregates are native to continuous views, the fields
 *	  each keeps, where they go in a group's state block, and what a worker
 *	  looks up to run them (the comparison functions of min and max).
 *
 * aggregate.c accumulates and merges the fields; aggregate_result.c turns
 * them into results, state_format.c into serialized states.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/nbtree.h"
#include "catalog/pg_aggregate.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "aggregates/aggregate.h"
#include "aggregates/aggregate_state.h"

static const struct
{
	Oid			aggfnoid;
	AggKind		kind;
	VarVariant	variant;
}			native_aggregates[] =
{
	{F_COUNT_, AGG_COUNT},
	{F_COUNT_ANY, AGG_COUNT},
	{F_SUM_INT2, AGG_SUM_INT},
	{F_SUM_INT4, AGG_SUM_INT},
	{F_SUM_INT8, AGG_SUM_INT8},
	{F_SUM_FLOAT4, AGG_SUM_FLOAT},
	{F_SUM_FLOAT8, AGG_SUM_FLOAT},
	{F_SUM_NUMERIC, AGG_SUM_NUMERIC},
	{F_AVG_INT2, AGG_AVG_INT},
	{F_AVG_INT4, AGG_AVG_INT},
	{F_AVG_INT8, AGG_AVG_INT},
	{F_AVG_FLOAT4, AGG_AVG_FLOAT},
	{F_AVG_FLOAT8, AGG_AVG_FLOAT},
	{F_AVG_NUMERIC, AGG_AVG_NUMERIC},
	{F_VAR_SAMP_INT2, AGG_VAR_INT, VARIANT_VAR_SAMP},
	{F_VAR_SAMP_INT4, AGG_VAR_INT, VARIANT_VAR_SAMP},
	{F_VAR_SAMP_INT8, AGG_VAR_NUMERIC, VARIANT_VAR_SAMP},
	{F_VAR_SAMP_FLOAT4, AGG_VAR_FLOAT, VARIANT_VAR_SAMP},
	{F_VAR_SAMP_FLOAT8, AGG_VAR_FLOAT, VARIANT_VAR_SAMP},
	{F_VAR_SAMP_NUMERIC, AGG_VAR_NUMERIC, VARIANT_VAR_SAMP},
	{F_VARIANCE_INT2, AGG_VAR_INT, VARIANT_VAR_SAMP},
	{F_VARIANCE_INT4, AGG_VAR_INT, VARIANT_VAR_SAMP},
	{F_VARIANCE_INT8, AGG_VAR_NUMERIC, VARIANT_VAR_SAMP},
	{F_VARIANCE_FLOAT4, AGG_VAR_FLOAT, VARIANT_VAR_SAMP},
	{F_VARIANCE_FLOAT8, AGG_VAR_FLOAT, VARIANT_VAR_SAMP},
	{F_VARIANCE_NUMERIC, AGG_VAR_NUMERIC, VARIANT_VAR_SAMP},
	{F_VAR_POP_INT2, AGG_VAR_INT, VARIANT_VAR_POP},
	{F_VAR_POP_INT4, AGG_VAR_INT, VARIANT_VAR_POP},
	{F_VAR_POP_INT8, AGG_VAR_NUMERIC, VARIANT_VAR_POP},
	{F_VAR_POP_FLOAT4, AGG_VAR_FLOAT, VARIANT_VAR_POP},
	{F_VAR_POP_FLOAT8, AGG_VAR_FLOAT, VARIANT_VAR_POP},
	{F_VAR_POP_NUMERIC, AGG_VAR_NUMERIC, VARIANT_VAR_POP},
	{F_STDDEV_SAMP_INT2, AGG_VAR_INT, VARIANT_STDDEV_SAMP},
	{F_STDDEV_SAMP_INT4, AGG_VAR_INT, VARIANT_STDDEV_SAMP},
	{F_STDDEV_SAMP_INT8, AGG_VAR_NUMERIC, VARIANT_STDDEV_SAMP},
	{F_STDDEV_SAMP_FLOAT4, AGG_VAR_FLOAT, VARIANT_STDDEV_SAMP},
	{F_STDDEV_SAMP_FLOAT8, AGG_VAR_FLOAT, VARIANT_STDDEV_SAMP},
	{F_STDDEV_SAMP_NUMERIC, AGG_VAR_NUMERIC, VARIANT_STDDEV_SAMP},
	{F_STDDEV_INT2, AGG_VAR_INT, VARIANT_STDDEV_SAMP},
	{F_STDDEV_INT4, AGG_VAR_INT, VARIANT_STDDEV_SAMP},
	{F_STDDEV_INT8, AGG_VAR_NUMERIC, VARIANT_STDDEV_SAMP},
	{F_STDDEV_FLOAT4, AGG_VAR_FLOAT, VARIANT_STDDEV_SAMP},
	{F_STDDEV_FLOAT8, AGG_VAR_FLOAT, VARIANT_STDDEV_SAMP},
	{F_STDDEV_NUMERIC, AGG_VAR_NUMERIC, VARIANT_STDDEV_SAMP},
	{F_STDDEV_POP_INT2, AGG_VAR_INT, VARIANT_STDDEV_POP},
	{F_STDDEV_POP_INT4, AGG_VAR_INT, VARIANT_STDDEV_POP},
	{F_STDDEV_POP_INT8, AGG_VAR_NUMERIC, VARIANT_STDDEV_POP},
	{F_STDDEV_POP_FLOAT4, AGG_VAR_FLOAT, VARIANT_STDDEV_POP},
	{F_STDDEV_POP_FLOAT8, AGG_VAR_FLOAT, VARIANT_STDDEV_POP},
	{F_STDDEV_POP_NUMERIC, AGG_VAR_NUMERIC, VARIANT_STDDEV_POP},
	{F_BOOL_AND, AGG_BOOL_AND},
	{F_EVERY, AGG_BOOL_AND},
	{F_BOOL_OR, AGG_BOOL_OR},
};

/*
 * Look up the btree ordering of a min/max-like aggregate (one with a sort
 * operator in pg_aggregate).  Returns false if it has none.
 */
static bool
minmax_ordering(Oid aggfnoid, bool *ismax, Oid *cmpproc)
{
	HeapTuple	tup;
	Oid			sortop;
	Oid			opfamily;
	Oid			opcintype;
	int16		strategy;

	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	if (!HeapTupleIsValid(tup))
		return false;
	sortop = ((Form_pg_aggregate) GETSTRUCT(tup))->aggsortop;
	ReleaseSysCache(tup);

	if (!OidIsValid(sortop) ||
		!get_ordering_op_properties(sortop, &opfamily, &opcintype, &strategy))
		return false;
	*ismax = (strategy == BTGreaterStrategyNumber);
	*cmpproc = get_opfamily_proc(opfamily, opcintype, opcintype, BTORDER_PROC);
	return OidIsValid(*cmpproc);
}

/*
 * AggIdentify fills spec for an aggregate call that flowstate maintains
 * natively, and returns false for any other aggregate.
 */
bool
AggIdentify(Aggref *aggref, AggSpec *spec)
{
	memset(spec, 0, sizeof(AggSpec));
	spec->aggfnoid = aggref->aggfnoid;
	spec->argtype = aggref->aggargtypes != NIL ? linitial_oid(aggref->aggargtypes) : InvalidOid;
	spec->restype = aggref->aggtype;
	spec->restypmod = -1;
	spec->rescollation = aggref->aggcollid;
	spec->inputcollid = aggref->inputcollid;
	spec->has_filter = (aggref->aggfilter != NULL);

	for (int i = 0; i < lengthof(native_aggregates); i++)
	{
		if (native_aggregates[i].aggfnoid == aggref->aggfnoid)
		{
			spec->kind = native_aggregates[i].kind;
			spec->variant = native_aggregates[i].variant;
			return true;
		}
	}

	/* min and max of any type with a btree ordering */
	if (list_length(aggref->args) == 1)
	{
		bool		ismax;
		Oid			cmpproc;

		if (minmax_ordering(aggref->aggfnoid, &ismax, &cmpproc))
		{
			spec->kind = ismax ? AGG_MAX : AGG_MIN;
			spec->argtype = aggref->aggtype;
			get_typlenbyval(aggref->aggtype, &spec->vallen, &spec->valbyval);
			return spec->vallen != -2;
		}
	}

	/* any other aggregate with a combine function (generic.c) */
	if (AggGenericRefusal(aggref->aggfnoid, list_length(aggref->args)) == NULL)
	{
		Oid			transtype;
		int			i = 0;
		ListCell   *lc;

		spec->kind = AGG_GENERIC;
		spec->nargs = list_length(aggref->args);
		foreach(lc, aggref->aggargtypes)
			spec->argtypes[i++] = lfirst_oid(lc);
		transtype = AggGenericTransType(spec);
		if (transtype == INTERNALOID)
		{
			spec->vallen = -1;	/* serialized */
			spec->valbyval = false;
		}
		else
			get_typlenbyval(transtype, &spec->vallen, &spec->valbyval);
		return true;
	}
	return false;
}

/*
 * AggSupportedList names the aggregates AggIdentify accepts, for hints.
 */
const char *
AggSupportedList(void)
{
	return "count, sum, avg, min, max, the variance family, bool_and, bool_or and every "
		"natively; count, sum and avg with DISTINCT, string_agg and array_agg with DISTINCT "
		"or ORDER BY, percentile_cont, percentile_disc and mode over a multiset of values; "
		"and any aggregate with a combine function";
}

/* AggFieldsSize: the bytes of an aggregate's fields in the local form. */
Size
AggFieldsSize(const AggSpec *spec)
{
	switch ((AggKind) spec->kind)
	{
		case AGG_COUNT:
			return sizeof(CountFields);
		case AGG_SUM_INT:
		case AGG_SUM_INT8:
		case AGG_AVG_INT:
			return sizeof(IntSumFields);
		case AGG_SUM_FLOAT:
		case AGG_AVG_FLOAT:
			return sizeof(FloatSumFields);
		case AGG_VAR_FLOAT:
			return sizeof(FloatVarFields);
		case AGG_VAR_INT:
			return sizeof(IntVarFields);
		case AGG_SUM_NUMERIC:
		case AGG_AVG_NUMERIC:
		case AGG_VAR_NUMERIC:
			return sizeof(NumericFields);
		case AGG_MIN:
		case AGG_MAX:
			return sizeof(MinMaxFields);
		case AGG_BOOL_AND:
		case AGG_BOOL_OR:
			return sizeof(BoolFields);
		case AGG_GENERIC:
			return sizeof(GenericFields);
	}
	elog(ERROR, "unknown flowstate aggregate kind %d", spec->kind);
	return 0;
}

/*
 * AggLayoutPlace assigns each aggregate its offset in the state block and
 * lists the var fields.
 */
void
AggLayoutPlace(ViewLayout *layout)
{
	int32		offset = BLOCK_HEADER_SIZE;

	layout->nvars = 0;
	for (int i = 0; i < layout->naggs; i++)
	{
		AggSpec    *spec = &layout->aggs[i];

		spec->offset = offset;
		switch ((AggKind) spec->kind)
		{
			case AGG_SUM_NUMERIC:
			case AGG_AVG_NUMERIC:
				layout->var_offsets[layout->nvars++] = offset + offsetof(NumericFields, sx);
				break;
			case AGG_VAR_NUMERIC:
				layout->var_offsets[layout->nvars++] = offset + offsetof(NumericFields, sx);
				layout->var_offsets[layout->nvars++] = offset + offsetof(NumericFields, sxx);
				break;
			case AGG_MIN:
			case AGG_MAX:
				if (!spec->valbyval)
				{
					layout->var_offsets[layout->nvars++] = offset + offsetof(MinMaxFields, val);
					layout->var_offsets[layout->nvars++] = offset + offsetof(MinMaxFields, delval);
				}
				break;
			case AGG_GENERIC:
				if (!spec->valbyval)
					layout->var_offsets[layout->nvars++] = offset + offsetof(GenericFields, state);
				break;
			default:
				break;
		}
		offset += MAXALIGN(AggFieldsSize(spec));
	}
	layout->block_size = offset;
	AggLayoutPack(layout);
}

/*
 * AggRuntimeCreate looks up the comparison functions of a layout's min and
 * max aggregates, in CurrentMemoryContext.
 */
AggRuntime *
AggRuntimeCreate(const ViewLayout *layout)
{
	AggRuntime *rt = palloc0(sizeof(AggRuntime));

	rt->layout = layout;
	rt->has_generic = AggHasGeneric(layout);
	/* their functions may read the catalog (type caches), even in C */
	rt->needs_xact = rt->has_generic;
	if (rt->has_generic)
		(void) AggGenericPrepare(layout);
	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *spec = &layout->aggs[i];
		bool		ismax;
		Oid			cmpproc;

		if (spec->kind != AGG_MIN && spec->kind != AGG_MAX)
			continue;
		if (!minmax_ordering(spec->aggfnoid, &ismax, &cmpproc))
			elog(ERROR, "aggregate %u has no btree ordering", spec->aggfnoid);
		fmgr_info(cmpproc, &rt->cmp[i]);
		switch (cmpproc)
		{
			case F_BTINT2CMP:
				rt->cmpkind[i] = CMP_INT16;
				break;
			case F_BTINT4CMP:
			case F_DATE_CMP:
				rt->cmpkind[i] = CMP_INT32;
				break;
			case F_BTINT8CMP:
			case F_TIMESTAMP_CMP:
			case F_CASH_CMP:
			case F_TIME_CMP:
				rt->cmpkind[i] = CMP_INT64;
				break;
			case F_BTFLOAT4CMP:
				rt->cmpkind[i] = CMP_FLOAT4;
				break;
			case F_BTFLOAT8CMP:
				rt->cmpkind[i] = CMP_FLOAT8;
				break;
			default:
				rt->cmpkind[i] = CMP_GENERIC;
				break;
		}
	}
	return rt;
}

/* AggHasGeneric: whether a layout has generic aggregates (generic.c). */
bool
AggHasGeneric(const ViewLayout *layout)
{
	for (int i = 0; i < layout->naggs; i++)
		if (layout->aggs[i].kind == AGG_GENERIC)
			return true;
	return false;
}
