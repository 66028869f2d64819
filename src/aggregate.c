/*-------------------------------------------------------------------------
 *
 * aggregate.c
 *	  The native aggregates of continuous views: count, sum, avg, min, max,
 *	  the variance family and bool_and/bool_or.
 *
 * Each aggregate keeps a few fields in a group's state block (layout.h).
 * Rows are accumulated into a *delta* block with a sign: +1 for a row that
 * enters the group, -1 for one that leaves it.  AggMerge adds a delta to a
 * group's state.  Counts and sums invert exactly.  min and max keep the best
 * inserted and the best deleted value of a delta; a merge that deletes the
 * current best reports the group as stale, and the caller recomputes it from
 * the source (ingest.c).  Numeric sums do the same when the last input with
 * the largest display scale goes, as PostgreSQL's own inverse transition
 * function does.
 *
 * Final results are PostgreSQL's own: the aggregate's final function runs on
 * a transition state rebuilt from the fields (an int8[] or float8[] array, or
 * the serialized form of an internal state), so result types, NULLs, display
 * scales and rounding are those of the batch query.  Float sums and
 * variances can differ from it in the last digits only, by the order of the
 * additions.
 *
 * Every function here works on blocks in the local form: a var field holds
 * a pointer to a palloc'd varlena, NULL when absent.  New values are
 * allocated in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/nbtree.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

#include "aggregate.h"

/* Fields of each aggregate kind; every struct is 8-byte aligned. */
typedef struct CountFields
{
	int64		n;
} CountFields;

typedef struct IntSumFields		/* AGG_SUM_INT, AGG_SUM_INT8, AGG_AVG_INT */
{
	int64		n;
	int128		s;
} IntSumFields;

typedef struct FloatSumFields	/* AGG_SUM_FLOAT, AGG_AVG_FLOAT */
{
	int64		n;				/* finite inputs */
	double		s;				/* their sum */
	int64		nan;
	int64		pinf;
	int64		ninf;
} FloatSumFields;

typedef struct FloatVarFields	/* AGG_VAR_FLOAT: Youngs-Cramer sums */
{
	double		n;				/* finite inputs (inserted, in a delta) */
	double		sx;
	double		sxx;
	double		dn;				/* deleted finite inputs, in a delta */
	double		dsx;
	double		dsxx;
	int64		nan;
	int64		pinf;
	int64		ninf;
} FloatVarFields;

typedef struct IntVarFields		/* AGG_VAR_INT */
{
	int64		n;
	int128		sx;
	int128		sxx;
} IntVarFields;

typedef struct NumericFields	/* AGG_SUM_NUMERIC, AGG_AVG_NUMERIC, AGG_VAR_NUMERIC */
{
	int64		n;				/* finite inputs */
	Datum		sx;				/* var field: their sum, NULL for zero */
	Datum		sxx;			/* var field (variance only): sum of squares */
	int64		nan;
	int64		pinf;
	int64		ninf;
	int32		scale;			/* largest display scale among inputs */
	int32		del_scale;		/* same among deleted inputs, in a delta */
	int64		scale_count;	/* inputs with that scale */
	int64		del_scale_count;
} NumericFields;

#define MM_HAS_VAL	0x01
#define MM_HAS_DEL	0x02

typedef struct MinMaxFields		/* AGG_MIN, AGG_MAX */
{
	int64		nn;				/* non-null inputs */
	Datum		val;			/* best value (var field if by reference) */
	Datum		delval;			/* best deleted value, in a delta (likewise) */
	int32		flags;
	int32		pad;
} MinMaxFields;

typedef struct BoolFields		/* AGG_BOOL_AND, AGG_BOOL_OR */
{
	int64		ntrue;
	int64		nfalse;
} BoolFields;

#define FIELDS(type, block, spec)	((type *) ((block) + (spec)->offset))

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
	return false;
}

/*
 * AggSupportedList names the aggregates AggIdentify accepts, for hints.
 */
const char *
AggSupportedList(void)
{
	return "count, sum, avg, min, max, variance, var_samp, var_pop, stddev, "
		"stddev_samp, stddev_pop, bool_and, bool_or and every";
}

static Size
fields_size(const AggSpec *spec)
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
			default:
				break;
		}
		offset += MAXALIGN(fields_size(spec));
	}
	layout->block_size = offset;
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

/* Compare doubles as btfloat8cmp does: NaN sorts above everything. */
static inline int
float_cmp(double a, double b)
{
	if (isnan(a))
		return isnan(b) ? 0 : 1;
	if (isnan(b))
		return -1;
	return (a > b) - (a < b);
}

static int
compare_values(const AggRuntime *rt, int aggno, Datum a, Datum b)
{
	switch (rt->cmpkind[aggno])
	{
		case CMP_INT16:
			return (DatumGetInt16(a) > DatumGetInt16(b)) - (DatumGetInt16(a) < DatumGetInt16(b));
		case CMP_INT32:
			return (DatumGetInt32(a) > DatumGetInt32(b)) - (DatumGetInt32(a) < DatumGetInt32(b));
		case CMP_INT64:
			return (DatumGetInt64(a) > DatumGetInt64(b)) - (DatumGetInt64(a) < DatumGetInt64(b));
		case CMP_FLOAT4:
			return float_cmp(DatumGetFloat4(a), DatumGetFloat4(b));
		case CMP_FLOAT8:
			return float_cmp(DatumGetFloat8(a), DatumGetFloat8(b));
		case CMP_GENERIC:
			return DatumGetInt32(FunctionCall2Coll((FmgrInfo *) &rt->cmp[aggno],
												   rt->layout->aggs[aggno].inputcollid,
												   a, b));
		case CMP_NONE:
			break;
	}
	elog(ERROR, "aggregate %d has no comparison", aggno);
	return 0;
}

/* Is a strictly better than b for this min or max aggregate? */
static inline bool
better(const AggRuntime *rt, int aggno, Datum a, Datum b)
{
	int			c = compare_values(rt, aggno, a, b);

	return rt->layout->aggs[aggno].kind == AGG_MIN ? c < 0 : c > 0;
}

/*
 * min/max values of by-reference types live in var fields, which hold
 * varlenas: a fixed-length value is wrapped after an 8-byte header, so that
 * it stays aligned.
 */
#define MM_WRAP_HEADER 8

static Datum
minmax_store(const AggSpec *spec, Datum value)
{
	char	   *wrapped;

	if (spec->valbyval)
		return value;
	if (spec->vallen == -1)
		return PointerGetDatum(PG_DETOAST_DATUM_COPY(value));
	wrapped = palloc0(MM_WRAP_HEADER + spec->vallen);
	SET_VARSIZE(wrapped, MM_WRAP_HEADER + spec->vallen);
	memcpy(wrapped + MM_WRAP_HEADER, DatumGetPointer(value), spec->vallen);
	return PointerGetDatum(wrapped);
}

static inline Datum
minmax_value(const AggSpec *spec, Datum stored)
{
	if (!spec->valbyval && spec->vallen > 0)
		return PointerGetDatum(DatumGetPointer(stored) + MM_WRAP_HEADER);
	return stored;
}

static inline int64
int_arg(Oid type, Datum value)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

static inline double
float_arg(Oid type, Datum value)
{
	return type == FLOAT4OID ? (double) DatumGetFloat4(value) : DatumGetFloat8(value);
}

/* Youngs-Cramer: add one value to (n, sx, sxx). */
static inline void
yc_add(double *n, double *sx, double *sxx, double x)
{
	double		n0 = *n;

	*n += 1.0;
	*sx += x;
	if (n0 > 0.0)
	{
		double		tmp = x * *n - *sx;

		*sxx += tmp * tmp / (*n * n0);
	}
}

/* Youngs-Cramer: combine two sets of sums, as float8_combine does. */
static void
yc_combine(double *n1, double *sx1, double *sxx1, double n2, double sx2, double sxx2)
{
	double		n,
				tmp;

	if (n2 == 0.0)
		return;
	if (*n1 == 0.0)
	{
		*n1 = n2;
		*sx1 = sx2;
		*sxx1 = sxx2;
		return;
	}
	n = *n1 + n2;
	tmp = *sx1 / *n1 - sx2 / n2;
	*sxx1 = *sxx1 + sxx2 + *n1 * n2 * tmp * tmp / n;
	*sx1 += sx2;
	*n1 = n;
}

/* Youngs-Cramer: remove a subset (n2, sx2, sxx2) from (n, sx, sxx). */
static void
yc_remove(double *n, double *sx, double *sxx, double n2, double sx2, double sxx2)
{
	double		n1,
				sx1,
				tmp;

	if (n2 == 0.0)
		return;
	n1 = *n - n2;
	if (n1 <= 0.0)
	{
		*n = n1 < 0.0 ? n1 : 0.0;
		*sx = 0.0;
		*sxx = 0.0;
		return;
	}
	sx1 = *sx - sx2;
	tmp = sx1 / n1 - sx2 / n2;
	*sxx = *sxx - sxx2 - n1 * n2 * tmp * tmp / *n;
	if (*sxx < 0.0)
		*sxx = 0.0;
	*sx = sx1;
	*n = n1;
}

static inline Numeric
numeric_or_zero(Datum d)
{
	return d == (Datum) 0 ? int64_to_numeric(0) : DatumGetNumeric(d);
}

static Datum
numeric_plus(Datum acc, Numeric x, int sign)
{
	if (acc == (Datum) 0)
	{
		if (sign > 0)
			return NumericGetDatum(DatumGetNumericCopy(NumericGetDatum(x)));
		return NumericGetDatum(numeric_sub_opt_error(int64_to_numeric(0), x, NULL));
	}
	if (sign > 0)
		return NumericGetDatum(numeric_add_opt_error(DatumGetNumeric(acc), x, NULL));
	return NumericGetDatum(numeric_sub_opt_error(DatumGetNumeric(acc), x, NULL));
}

/* Track the largest display scale and how many inputs have it. */
static inline void
track_scale(int32 *scale, int64 *count, int32 s, int64 n)
{
	if (n == 0)
		return;
	if (s > *scale || *count == 0)
	{
		*scale = s;
		*count = n;
	}
	else if (s == *scale)
		*count += n;
}

static void
accumulate_numeric(const AggSpec *spec, NumericFields *f, Datum value, int sign)
{
	Numeric		x;
	int32		scale;

	if (spec->argtype == INT8OID)
		x = int64_to_numeric(DatumGetInt64(value));
	else
		x = DatumGetNumeric(value);

	if (numeric_is_nan(x))
	{
		f->nan += sign;
		return;
	}
	if (numeric_is_inf(x))
	{
		if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(x),
											  NumericGetDatum(int64_to_numeric(0)))) > 0)
			f->pinf += sign;
		else
			f->ninf += sign;
		return;
	}

	f->n += sign;
	f->sx = numeric_plus(f->sx, x, sign);
	if (spec->kind == AGG_VAR_NUMERIC)
		f->sxx = numeric_plus(f->sxx, numeric_mul_opt_error(x, x, NULL), sign);

	scale = DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(x)));
	if (sign > 0)
		track_scale(&f->scale, &f->scale_count, scale, 1);
	else
		track_scale(&f->del_scale, &f->del_scale_count, scale, 1);
}

/*
 * AggAccumulate adds (sign > 0) or removes (sign < 0) one input of an
 * aggregate to a delta block.  By-reference values are copied into
 * CurrentMemoryContext when kept.
 */
void
AggAccumulate(const AggRuntime *rt, int aggno, char *block, Datum value,
			  bool isnull, int sign)
{
	const AggSpec *spec = &rt->layout->aggs[aggno];

	/* every native aggregate ignores NULL inputs; count(*) gets none */
	if (isnull)
		return;

	switch ((AggKind) spec->kind)
	{
		case AGG_COUNT:
			FIELDS(CountFields, block, spec)->n += sign;
			break;

		case AGG_SUM_INT:
		case AGG_SUM_INT8:
		case AGG_AVG_INT:
			{
				IntSumFields *f = FIELDS(IntSumFields, block, spec);

				f->n += sign;
				f->s += (int128) sign * int_arg(spec->argtype, value);
				break;
			}

		case AGG_SUM_FLOAT:
		case AGG_AVG_FLOAT:
			{
				FloatSumFields *f = FIELDS(FloatSumFields, block, spec);
				double		x = float_arg(spec->argtype, value);

				if (isnan(x))
					f->nan += sign;
				else if (isinf(x))
				{
					if (x > 0)
						f->pinf += sign;
					else
						f->ninf += sign;
				}
				else
				{
					f->n += sign;
					f->s += sign * x;
				}
				break;
			}

		case AGG_VAR_FLOAT:
			{
				FloatVarFields *f = FIELDS(FloatVarFields, block, spec);
				double		x = float_arg(spec->argtype, value);

				if (isnan(x))
					f->nan += sign;
				else if (isinf(x))
				{
					if (x > 0)
						f->pinf += sign;
					else
						f->ninf += sign;
				}
				else if (sign > 0)
					yc_add(&f->n, &f->sx, &f->sxx, x);
				else
					yc_add(&f->dn, &f->dsx, &f->dsxx, x);
				break;
			}

		case AGG_VAR_INT:
			{
				IntVarFields *f = FIELDS(IntVarFields, block, spec);
				int64		x = int_arg(spec->argtype, value);

				f->n += sign;
				f->sx += (int128) sign * x;
				f->sxx += (int128) sign * ((int128) x * x);
				break;
			}

		case AGG_SUM_NUMERIC:
		case AGG_AVG_NUMERIC:
		case AGG_VAR_NUMERIC:
			accumulate_numeric(spec, FIELDS(NumericFields, block, spec), value, sign);
			break;

		case AGG_MIN:
		case AGG_MAX:
			{
				MinMaxFields *f = FIELDS(MinMaxFields, block, spec);

				f->nn += sign;
				if (sign > 0)
				{
					if (!(f->flags & MM_HAS_VAL) ||
						better(rt, aggno, value, minmax_value(spec, f->val)))
					{
						f->val = minmax_store(spec, value);
						f->flags |= MM_HAS_VAL;
					}
				}
				else
				{
					/* the deleted value that matters is the best one */
					if (!(f->flags & MM_HAS_DEL) ||
						better(rt, aggno, value, minmax_value(spec, f->delval)))
					{
						f->delval = minmax_store(spec, value);
						f->flags |= MM_HAS_DEL;
					}
				}
				break;
			}

		case AGG_BOOL_AND:
		case AGG_BOOL_OR:
			{
				BoolFields *f = FIELDS(BoolFields, block, spec);

				if (DatumGetBool(value))
					f->ntrue += sign;
				else
					f->nfalse += sign;
				break;
			}
	}
}

static bool
merge_numeric(const AggSpec *spec, NumericFields *t, const NumericFields *d)
{
	t->n += d->n;
	t->nan += d->nan;
	t->pinf += d->pinf;
	t->ninf += d->ninf;
	if (t->n < 0 || t->nan < 0 || t->pinf < 0 || t->ninf < 0)
		return false;

	if (d->sx != (Datum) 0)
		t->sx = t->sx == (Datum) 0 ? d->sx :
			NumericGetDatum(numeric_add_opt_error(DatumGetNumeric(t->sx),
												  DatumGetNumeric(d->sx), NULL));
	if (spec->kind == AGG_VAR_NUMERIC && d->sxx != (Datum) 0)
		t->sxx = t->sxx == (Datum) 0 ? d->sxx :
			NumericGetDatum(numeric_add_opt_error(DatumGetNumeric(t->sxx),
												  DatumGetNumeric(d->sxx), NULL));

	track_scale(&t->scale, &t->scale_count, d->scale, d->scale_count);
	if (d->del_scale_count > 0)
	{
		if (d->del_scale > t->scale)
			return false;
		if (d->del_scale == t->scale)
			t->scale_count -= d->del_scale_count;
	}

	if (t->n == 0)
	{
		t->sx = (Datum) 0;
		t->sxx = (Datum) 0;
		t->scale = 0;
		t->scale_count = 0;
	}
	else if (t->scale_count <= 0)
		return false;			/* the largest scale left: unknown */
	return true;
}

static bool
merge_minmax(const AggRuntime *rt, int aggno, MinMaxFields *t, const MinMaxFields *d)
{
	const AggSpec *spec = &rt->layout->aggs[aggno];
	bool		have = t->nn > 0 && (t->flags & MM_HAS_VAL);
	Datum		best = t->val;

	t->nn += d->nn;
	if (t->nn < 0)
		return false;
	if (d->flags & MM_HAS_VAL)
	{
		if (!have || better(rt, aggno, minmax_value(spec, d->val), minmax_value(spec, best)))
			best = d->val;
		have = true;
	}
	if (t->nn == 0)
	{
		t->val = (Datum) 0;
		t->flags = 0;
		return true;
	}
	if (!have)
		return false;
	/* a deleted value at least as good as the best: it may be the best */
	if ((d->flags & MM_HAS_DEL) &&
		!better(rt, aggno, minmax_value(spec, best), minmax_value(spec, d->delval)))
		return false;
	t->val = best;
	t->flags = MM_HAS_VAL;
	return true;
}

/*
 * AggMerge adds a delta block to a group's state block (nrows included).
 * Returns false when the result cannot be known from the two, and the group
 * must be recomputed; target is then garbage.
 */
bool
AggMerge(const AggRuntime *rt, char *target, const char *delta)
{
	const ViewLayout *layout = rt->layout;

	BLOCK_NROWS(target) += BLOCK_NROWS(delta);
	if (BLOCK_NROWS(target) < 0)
		return false;

	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *spec = &layout->aggs[i];

		switch ((AggKind) spec->kind)
		{
			case AGG_COUNT:
				FIELDS(CountFields, target, spec)->n += FIELDS(CountFields, delta, spec)->n;
				if (FIELDS(CountFields, target, spec)->n < 0)
					return false;
				break;

			case AGG_SUM_INT:
			case AGG_SUM_INT8:
			case AGG_AVG_INT:
				{
					IntSumFields *t = FIELDS(IntSumFields, target, spec);
					IntSumFields *d = FIELDS(IntSumFields, delta, spec);

					t->n += d->n;
					t->s += d->s;
					if (t->n < 0)
						return false;
					break;
				}

			case AGG_SUM_FLOAT:
			case AGG_AVG_FLOAT:
				{
					FloatSumFields *t = FIELDS(FloatSumFields, target, spec);
					FloatSumFields *d = FIELDS(FloatSumFields, delta, spec);

					t->n += d->n;
					t->s += d->s;
					t->nan += d->nan;
					t->pinf += d->pinf;
					t->ninf += d->ninf;
					if (t->n < 0 || t->nan < 0 || t->pinf < 0 || t->ninf < 0)
						return false;
					if (t->n == 0)
						t->s = 0.0;
					break;
				}

			case AGG_VAR_FLOAT:
				{
					FloatVarFields *t = FIELDS(FloatVarFields, target, spec);
					FloatVarFields *d = FIELDS(FloatVarFields, delta, spec);

					yc_combine(&t->n, &t->sx, &t->sxx, d->n, d->sx, d->sxx);
					yc_remove(&t->n, &t->sx, &t->sxx, d->dn, d->dsx, d->dsxx);
					t->nan += d->nan;
					t->pinf += d->pinf;
					t->ninf += d->ninf;
					if (t->n < 0 || t->nan < 0 || t->pinf < 0 || t->ninf < 0)
						return false;
					break;
				}

			case AGG_VAR_INT:
				{
					IntVarFields *t = FIELDS(IntVarFields, target, spec);
					IntVarFields *d = FIELDS(IntVarFields, delta, spec);

					t->n += d->n;
					t->sx += d->sx;
					t->sxx += d->sxx;
					if (t->n < 0)
						return false;
					break;
				}

			case AGG_SUM_NUMERIC:
			case AGG_AVG_NUMERIC:
			case AGG_VAR_NUMERIC:
				if (!merge_numeric(spec, FIELDS(NumericFields, target, spec),
								   FIELDS(NumericFields, delta, spec)))
					return false;
				break;

			case AGG_MIN:
			case AGG_MAX:
				if (!merge_minmax(rt, i, FIELDS(MinMaxFields, target, spec),
								  FIELDS(MinMaxFields, delta, spec)))
					return false;
				break;

			case AGG_BOOL_AND:
			case AGG_BOOL_OR:
				{
					BoolFields *t = FIELDS(BoolFields, target, spec);
					BoolFields *d = FIELDS(BoolFields, delta, spec);

					t->ntrue += d->ntrue;
					t->nfalse += d->nfalse;
					if (t->ntrue < 0 || t->nfalse < 0)
						return false;
					break;
				}
		}
	}
	return true;
}

/*
 * AggIsEmpty tells whether a group has no rows left: it then disappears
 * from its view, unless the view has no GROUP BY.
 */
bool
AggIsEmpty(const ViewLayout *layout, const char *block)
{
	return !layout->scalar && BLOCK_NROWS(block) == 0;
}

/* Format an int128 in decimal and read it as a numeric. */
static Numeric
int128_numeric(int128 v)
{
	char		buf[48];
	char	   *p = buf + sizeof(buf) - 1;
	bool		neg = v < 0;
	uint128		u = neg ? -(uint128) v : (uint128) v;

	*p = '\0';
	do
	{
		*--p = '0' + (int) (u % 10);
		u /= 10;
	} while (u != 0);
	if (neg)
		*--p = '-';
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(p),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/*
 * Append a numeric in the format numeric.c's aggregate serialization uses
 * for its NumericVars (int32 ndigits, weight, sign, dscale, then int16
 * digits), converted from numeric_send's format (the same fields as int16).
 */
static void
send_numericvar(StringInfo buf, Numeric num)
{
	bytea	   *sent = DatumGetByteaPP(DirectFunctionCall1(numeric_send, NumericGetDatum(num)));
	StringInfoData in;
	int			ndigits;

	in.data = VARDATA_ANY(sent);
	in.len = VARSIZE_ANY_EXHDR(sent);
	in.maxlen = in.len;
	in.cursor = 0;

	ndigits = (int16) pq_getmsgint(&in, 2);
	pq_sendint32(buf, ndigits);
	pq_sendint32(buf, (int32) (int16) pq_getmsgint(&in, 2));	/* weight */
	pq_sendint32(buf, (int32) pq_getmsgint(&in, 2));	/* sign */
	pq_sendint32(buf, (int32) pq_getmsgint(&in, 2));	/* dscale */
	for (int i = 0; i < ndigits; i++)
		pq_sendint16(buf, (int16) pq_getmsgint(&in, 2));
}

/*
 * Call an aggregate support function that insists on running in an
 * aggregate context (the deserialization functions of internal states).
 */
static Datum
call_in_agg_context(Oid fn, int nargs, Datum *args, bool *isnull)
{
	WindowAggState *ctx = makeNode(WindowAggState);
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	Assert(nargs <= 2);
	ctx->curaggcontext = CurrentMemoryContext;
	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, nargs, InvalidOid, (Node *) ctx, NULL);
	for (int i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = false;
	}
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/* Run PostgreSQL's final function of an internal state serialized in buf. */
static Datum
final_from_serialized(Oid deserialfn, Oid finalfn, StringInfo buf, bool *isnull)
{
	bytea	   *state = palloc(VARHDRSZ + buf->len);
	Datum		args[2];
	Datum		internal;

	SET_VARSIZE(state, VARHDRSZ + buf->len);
	memcpy(VARDATA(state), buf->data, buf->len);
	args[0] = PointerGetDatum(state);
	args[1] = PointerGetDatum(NULL);
	internal = call_in_agg_context(deserialfn, 2, args, isnull);
	args[0] = internal;
	return call_in_agg_context(finalfn, 1, args, isnull);
}

static Datum
float8_array(double n, double sx, double sxx)
{
	Datum		d[3];

	d[0] = Float8GetDatum(n);
	d[1] = Float8GetDatum(sx);
	d[2] = Float8GetDatum(sxx);
	return PointerGetDatum(construct_array(d, 3, FLOAT8OID, sizeof(float8),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* The value of a float sum given its special inputs, as float8pl gives it. */
static double
float_special_sum(int64 nan, int64 pinf, int64 ninf, double finite)
{
	if (nan > 0 || (pinf > 0 && ninf > 0))
		return get_float8_nan();
	if (pinf > 0)
		return get_float8_infinity();
	if (ninf > 0)
		return -get_float8_infinity();
	return finite;
}

static Datum
numeric_special(int64 nan, int64 pinf, int64 ninf, bool *special)
{
	const char *word = NULL;

	if (nan > 0 || (pinf > 0 && ninf > 0))
		word = "NaN";
	else if (pinf > 0)
		word = "Infinity";
	else if (ninf > 0)
		word = "-Infinity";
	*special = (word != NULL);
	if (word == NULL)
		return (Datum) 0;
	return DirectFunctionCall3(numeric_in, CStringGetDatum(word),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

static Oid
variance_final(VarVariant variant, bool poly)
{
	switch (variant)
	{
		case VARIANT_VAR_SAMP:
			return poly ? F_NUMERIC_POLY_VAR_SAMP : F_NUMERIC_VAR_SAMP;
		case VARIANT_VAR_POP:
			return poly ? F_NUMERIC_POLY_VAR_POP : F_NUMERIC_VAR_POP;
		case VARIANT_STDDEV_SAMP:
			return poly ? F_NUMERIC_POLY_STDDEV_SAMP : F_NUMERIC_STDDEV_SAMP;
		case VARIANT_STDDEV_POP:
			return poly ? F_NUMERIC_POLY_STDDEV_POP : F_NUMERIC_STDDEV_POP;
		case VARIANT_NONE:
			break;
	}
	elog(ERROR, "unknown variance variant %d", variant);
	return InvalidOid;
}

static Oid
float_variance_final(VarVariant variant)
{
	switch (variant)
	{
		case VARIANT_VAR_SAMP:
			return F_FLOAT8_VAR_SAMP;
		case VARIANT_VAR_POP:
			return F_FLOAT8_VAR_POP;
		case VARIANT_STDDEV_SAMP:
			return F_FLOAT8_STDDEV_SAMP;
		case VARIANT_STDDEV_POP:
			return F_FLOAT8_STDDEV_POP;
		case VARIANT_NONE:
			break;
	}
	elog(ERROR, "unknown variance variant %d", variant);
	return InvalidOid;
}

/* Call a final function that takes one non-NULL argument and may return NULL. */
static Datum
call_final(Oid fn, Datum arg, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 1);
	FmgrInfo	flinfo;
	Datum		result;

	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = arg;
	fcinfo->args[0].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * AggFinalize computes an aggregate's result from a group's state block,
 * exactly as PostgreSQL's aggregate would have for the same inputs.  A
 * result out of its type's range is an error, as in the batch query, unless
 * overflow is given: it is then set and the result is NULL.
 */
void
AggFinalize(const ViewLayout *layout, int aggno, const char *block,
			Datum *value, bool *isnull, bool *overflow)
{
	const AggSpec *spec = &layout->aggs[aggno];

	*isnull = false;
	switch ((AggKind) spec->kind)
	{
		case AGG_COUNT:
			*value = Int64GetDatum(FIELDS(CountFields, block, spec)->n);
			return;

		case AGG_SUM_INT:
			{
				IntSumFields *f = FIELDS(IntSumFields, block, spec);

				if (f->n == 0)
					break;
				if ((f->s > PG_INT64_MAX || f->s < PG_INT64_MIN) && overflow)
				{
					*overflow = true;
					break;
				}
				if (f->s > PG_INT64_MAX || f->s < PG_INT64_MIN)
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("bigint out of range")));
				*value = Int64GetDatum((int64) f->s);
				return;
			}

		case AGG_SUM_INT8:
			{
				IntSumFields *f = FIELDS(IntSumFields, block, spec);

				if (f->n == 0)
					break;
				*value = NumericGetDatum(int128_numeric(f->s));
				return;
			}

		case AGG_AVG_INT:
			{
				IntSumFields *f = FIELDS(IntSumFields, block, spec);

				if (f->n == 0)
					break;
				/* int8_avg and numeric_poly_avg: sum / count in numeric */
				*value = DirectFunctionCall2(numeric_div,
											 NumericGetDatum(int128_numeric(f->s)),
											 NumericGetDatum(int64_to_numeric(f->n)));
				return;
			}

		case AGG_SUM_FLOAT:
			{
				FloatSumFields *f = FIELDS(FloatSumFields, block, spec);
				double		s;

				if (f->n + f->nan + f->pinf + f->ninf == 0)
					break;
				s = float_special_sum(f->nan, f->pinf, f->ninf, f->s);
				*value = spec->restype == FLOAT4OID ? Float4GetDatum((float4) s) : Float8GetDatum(s);
				return;
			}

		case AGG_AVG_FLOAT:
			{
				FloatSumFields *f = FIELDS(FloatSumFields, block, spec);
				int64		total = f->n + f->nan + f->pinf + f->ninf;

				if (total == 0)
					break;
				*value = Float8GetDatum(float_special_sum(f->nan, f->pinf, f->ninf, f->s) / total);
				return;
			}

		case AGG_VAR_FLOAT:
			{
				FloatVarFields *f = FIELDS(FloatVarFields, block, spec);
				double		total = f->n + f->nan + f->pinf + f->ninf;
				double		sx = f->sx;
				double		sxx = f->sxx;

				if (f->nan + f->pinf + f->ninf > 0)
				{
					sx = float_special_sum(f->nan, f->pinf, f->ninf, sx);
					sxx = get_float8_nan();
				}
				*value = call_final(float_variance_final(spec->variant),
									float8_array(total, sx, sxx), isnull);
				return;
			}

		case AGG_VAR_INT:
			{
				IntVarFields *f = FIELDS(IntVarFields, block, spec);
				StringInfoData buf;

				/* numeric_poly_serialize: N, sumX, sumX2 */
				initStringInfo(&buf);
				pq_sendint64(&buf, f->n);
				send_numericvar(&buf, int128_numeric(f->sx));
				send_numericvar(&buf, int128_numeric(f->sxx));
				*value = final_from_serialized(F_NUMERIC_POLY_DESERIALIZE,
											   variance_final(spec->variant, true),
											   &buf, isnull);
				return;
			}

		case AGG_SUM_NUMERIC:
		case AGG_AVG_NUMERIC:
			{
				NumericFields *f = FIELDS(NumericFields, block, spec);
				bool		special;

				if (f->n + f->nan + f->pinf + f->ninf == 0)
					break;
				*value = numeric_special(f->nan, f->pinf, f->ninf, &special);
				if (special)
					return;
				if (spec->kind == AGG_SUM_NUMERIC)
					*value = NumericGetDatum(DatumGetNumericCopy(NumericGetDatum(numeric_or_zero(f->sx))));
				else
					*value = DirectFunctionCall2(numeric_div,
												 NumericGetDatum(numeric_or_zero(f->sx)),
												 NumericGetDatum(int64_to_numeric(f->n)));
				return;
			}

		case AGG_VAR_NUMERIC:
			{
				NumericFields *f = FIELDS(NumericFields, block, spec);
				StringInfoData buf;

				/* numeric_serialize: N, sumX, sumX2, scale, counts */
				initStringInfo(&buf);
				pq_sendint64(&buf, f->n);
				send_numericvar(&buf, numeric_or_zero(f->sx));
				send_numericvar(&buf, numeric_or_zero(f->sxx));
				pq_sendint32(&buf, f->scale);
				pq_sendint64(&buf, f->scale_count);
				pq_sendint64(&buf, f->nan);
				pq_sendint64(&buf, f->pinf);
				pq_sendint64(&buf, f->ninf);
				*value = final_from_serialized(F_NUMERIC_DESERIALIZE,
											   variance_final(spec->variant, false),
											   &buf, isnull);
				return;
			}

		case AGG_MIN:
		case AGG_MAX:
			{
				MinMaxFields *f = FIELDS(MinMaxFields, block, spec);

				if (f->nn == 0 || !(f->flags & MM_HAS_VAL))
					break;
				*value = minmax_value(spec, f->val);
				return;
			}

		case AGG_BOOL_AND:
			{
				BoolFields *f = FIELDS(BoolFields, block, spec);

				if (f->ntrue + f->nfalse == 0)
					break;
				*value = BoolGetDatum(f->nfalse == 0);
				return;
			}

		case AGG_BOOL_OR:
			{
				BoolFields *f = FIELDS(BoolFields, block, spec);

				if (f->ntrue + f->nfalse == 0)
					break;
				*value = BoolGetDatum(f->ntrue > 0);
				return;
			}
	}
	*value = (Datum) 0;
	*isnull = true;
}

/*
 * AggSerialize turns a block into the bytea kept in a state table: a format
 * byte, the block with its var fields zeroed, then each var field as a
 * length (-1 when absent) and its bytes.  Only the same view reads it back.
 */
#define STATE_FORMAT 1

bytea *
AggSerialize(const ViewLayout *layout, const char *block)
{
	StringInfoData buf;
	char	   *copy = palloc(layout->block_size);
	bytea	   *result;

	memcpy(copy, block, layout->block_size);
	for (int i = 0; i < layout->nvars; i++)
		*(Datum *) (copy + layout->var_offsets[i]) = (Datum) 0;

	initStringInfo(&buf);
	appendStringInfoCharMacro(&buf, STATE_FORMAT);
	appendBinaryStringInfo(&buf, copy, layout->block_size);
	for (int i = 0; i < layout->nvars; i++)
	{
		Datum		d = *(Datum *) (block + layout->var_offsets[i]);
		int32		len = d == (Datum) 0 ? -1 : (int32) VARSIZE_ANY(DatumGetPointer(d));

		appendBinaryStringInfo(&buf, (char *) &len, sizeof(len));
		if (len > 0)
			appendBinaryStringInfo(&buf, DatumGetPointer(d), len);
	}
	pfree(copy);

	result = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(result, VARHDRSZ + buf.len);
	memcpy(VARDATA(result), buf.data, buf.len);
	pfree(buf.data);
	return result;
}

/*
 * AggDeserialize reads a state written by AggSerialize into a block in the
 * local form, its var fields palloc'd in CurrentMemoryContext.
 */
void
AggDeserialize(const ViewLayout *layout, const bytea *state, char *block)
{
	const char *p = VARDATA_ANY(state);
	const char *end = p + VARSIZE_ANY_EXHDR(state);

	if (end - p < 1 + layout->block_size || *p != STATE_FORMAT)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("flowstate state of unexpected format or size %d",
						(int) (end - p))));
	p++;
	memcpy(block, p, layout->block_size);
	p += layout->block_size;
	for (int i = 0; i < layout->nvars; i++)
	{
		int32		len;
		char	   *val = NULL;

		if (end - p < (long) sizeof(len))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("flowstate state truncated")));
		memcpy(&len, p, sizeof(len));
		p += sizeof(len);
		if (len > 0)
		{
			if (end - p < len)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("flowstate state truncated")));
			val = palloc(len);
			memcpy(val, p, len);
			p += len;
		}
		*(Datum *) (block + layout->var_offsets[i]) = PointerGetDatum(val);
	}
}

/*
 * AggCopyVars replaces each var field of a local block by a copy in
 * CurrentMemoryContext.
 */
void
AggCopyVars(const ViewLayout *layout, char *block)
{
	for (int i = 0; i < layout->nvars; i++)
	{
		Datum	   *d = (Datum *) (block + layout->var_offsets[i]);

		if (*d != (Datum) 0)
		{
			Size		len = VARSIZE_ANY(DatumGetPointer(*d));
			char	   *copy = palloc(len);

			memcpy(copy, DatumGetPointer(*d), len);
			*d = PointerGetDatum(copy);
		}
	}
}
