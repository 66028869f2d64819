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
 * Which aggregates are native, their fields and their place in a block are
 * in aggregate_spec.c, the fields in aggregate_state.h; final results,
 * PostgreSQL's own, are in aggregate_result.c, the serialized state in
 * state_format.c.  Float sums and variances
 * can differ from the batch query in the last digits only, by the order of
 * the additions.
 *
 * Every function here works on blocks in the local form: a var field holds
 * a pointer to a palloc'd varlena, NULL when absent.  New values are
 * allocated in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "nodes/execnodes.h"
#include "utils/builtins.h"

#include "aggregates/aggregate.h"
#include "aggregates/aggregate_state.h"

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

/*
 * A float sum or variance that a merge makes this many times smaller than
 * its operands may have lost its precision (AggLostPrecision).
 */
#define LOST_PRECISION_RATIO 1024.0

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

/* Count x, with sign, if it is not finite; returns whether it was not. */
static inline bool
specials_add(Specials *sp, double x, int sign)
{
	if (isnan(x))
		sp->nan += sign;
	else if (isinf(x) && x > 0)
		sp->pinf += sign;
	else if (isinf(x))
		sp->ninf += sign;
	else
		return false;
	return true;
}

/*
 * Add d's counts to t's; false if some count went negative.  Where t keeps
 * presence rather than counts (sum and avg in shared memory:
 * shared_block.c), a delta that removes some is enough to return false.
 */
static inline bool
specials_merge(Specials *t, const Specials *d, bool presence)
{
	if (presence && (d->nan < 0 || d->pinf < 0 || d->ninf < 0))
		return false;
	t->nan += d->nan;
	t->pinf += d->pinf;
	t->ninf += d->ninf;
	return t->nan >= 0 && t->pinf >= 0 && t->ninf >= 0;
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
accumulate_numeric(const AggSpec *spec, NumericFields *f, Datum value, int sign, bool owned)
{
	Datum		old_sx = f->sx;
	Datum		old_sxx = f->sxx;
	Numeric		x;
	bool		x_made;			/* x is a value of ours, not value */
	int32		scale;

	if (spec->argtype == INT8OID)
		x = int64_to_numeric(DatumGetInt64(value));
	else
		x = DatumGetNumeric(value);
	x_made = (Pointer) x != DatumGetPointer(value);

	if (numeric_is_nan(x) || numeric_is_inf(x))
	{
		/* as a float8: NaN, Infinity or -Infinity */
		(void) specials_add(&f->sp, DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
																	   NumericGetDatum(x))),
							sign);
		if (owned && x_made)
			pfree(x);
		return;
	}

	f->n += sign;
	f->sx = numeric_plus(f->sx, x, sign);
	if (spec->kind == AGG_VAR_NUMERIC)
	{
		Numeric		xx = numeric_mul_opt_error(x, x, NULL);

		f->sxx = numeric_plus(f->sxx, xx, sign);
		if (owned)
			pfree(xx);
	}

	scale = DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(x)));
	if (sign > 0)
		track_scale(&f->scale, &f->scale_count, scale, 1);
	else
		track_scale(&f->del_scale, &f->del_scale_count, scale, 1);

	/* what the new sums replace, and x, are garbage: free them if ours */
	if (owned)
	{
		if (old_sx != (Datum) 0)
			pfree(DatumGetPointer(old_sx));
		if (old_sxx != (Datum) 0 && spec->kind == AGG_VAR_NUMERIC)
			pfree(DatumGetPointer(old_sxx));
		if (x_made)
			pfree(x);
	}
}

/*
 * AggAccumulate adds (sign > 0) or removes (sign < 0) one input of an
 * aggregate to a delta block.  By-reference values are copied into
 * CurrentMemoryContext when kept; with owned, the block's own values they
 * replace are freed (no other block points to them).
 */
void
AggAccumulate(const AggRuntime *rt, int aggno, char *block, Datum value,
			  bool isnull, int sign, bool owned)
{
	const AggSpec *spec = &rt->layout->aggs[aggno];

	/* a generic aggregate cannot take inputs back: its group is recomputed */
	if (spec->kind == AGG_GENERIC)
	{
		if (sign < 0)
			FIELDS(GenericFields, block, spec)->ndeleted++;
		else
			elog(ERROR, "rows enter generic aggregates through their transition function");
		return;
	}
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

				if (!specials_add(&f->sp, x, sign))
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

				if (specials_add(&f->sp, x, sign))
					break;
				if (sign > 0)
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
			accumulate_numeric(spec, FIELDS(NumericFields, block, spec), value, sign, owned);
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
						if (owned && !spec->valbyval && (f->flags & MM_HAS_VAL))
							pfree(DatumGetPointer(f->val));
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
						if (owned && !spec->valbyval && (f->flags & MM_HAS_DEL))
							pfree(DatumGetPointer(f->delval));
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

		case AGG_GENERIC:
			break;				/* above */
	}
}

static bool
merge_numeric(const AggSpec *spec, NumericFields *t, const NumericFields *d)
{
	t->n += d->n;
	if (!specials_merge(&t->sp, &d->sp, spec->kind != AGG_VAR_NUMERIC) || t->n < 0)
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
					if (!specials_merge(&t->sp, &d->sp, true) || t->n < 0)
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
					if (!specials_merge(&t->sp, &d->sp, false) || t->n < 0)
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

			case AGG_GENERIC:
				if (FIELDS(GenericFields, delta, spec)->ndeleted > 0)
					return false;
				AggGenericCombine(spec, target, delta);
				break;
		}
	}
	return true;
}

/* A copy of a var field's varlena in CurrentMemoryContext. */
static Datum
copy_var(Datum d)
{
	Size		len = VARSIZE_ANY(DatumGetPointer(d));
	char	   *copy = palloc(len);

	memcpy(copy, DatumGetPointer(d), len);
	return PointerGetDatum(copy);
}

static void
combine_numeric(const AggSpec *spec, NumericFields *t, const NumericFields *d)
{
	t->n += d->n;
	t->sp.nan += d->sp.nan;
	t->sp.pinf += d->sp.pinf;
	t->sp.ninf += d->sp.ninf;
	if (d->sx != (Datum) 0)
		t->sx = t->sx == (Datum) 0 ? copy_var(d->sx) :
			NumericGetDatum(numeric_add_opt_error(DatumGetNumeric(t->sx),
												  DatumGetNumeric(d->sx), NULL));
	if (spec->kind == AGG_VAR_NUMERIC && d->sxx != (Datum) 0)
		t->sxx = t->sxx == (Datum) 0 ? copy_var(d->sxx) :
			NumericGetDatum(numeric_add_opt_error(DatumGetNumeric(t->sxx),
												  DatumGetNumeric(d->sxx), NULL));
	track_scale(&t->scale, &t->scale_count, d->scale, d->scale_count);
	track_scale(&t->del_scale, &t->del_scale_count, d->del_scale, d->del_scale_count);
}

static void
combine_minmax(const AggRuntime *rt, int aggno, MinMaxFields *t, const MinMaxFields *d)
{
	const AggSpec *spec = &rt->layout->aggs[aggno];

	t->nn += d->nn;
	if ((d->flags & MM_HAS_VAL) &&
		(!(t->flags & MM_HAS_VAL) ||
		 better(rt, aggno, minmax_value(spec, d->val), minmax_value(spec, t->val))))
	{
		t->val = spec->valbyval ? d->val : copy_var(d->val);
		t->flags |= MM_HAS_VAL;
	}
	if ((d->flags & MM_HAS_DEL) &&
		(!(t->flags & MM_HAS_DEL) ||
		 better(rt, aggno, minmax_value(spec, d->delval), minmax_value(spec, t->delval))))
	{
		t->delval = spec->valbyval ? d->delval : copy_var(d->delval);
		t->flags |= MM_HAS_DEL;
	}
}

/*
 * AggCombine adds delta block d to delta block t: t becomes what
 * accumulating the inputs of both into one delta gives (accumulation is
 * order-free).  Used for the deltas a transaction gathers while it is
 * still open (open_txn.c).  Values taken from d are copied into
 * CurrentMemoryContext.
 */
void
AggCombine(const AggRuntime *rt, char *t, const char *d)
{
	const ViewLayout *layout = rt->layout;

	BLOCK_NROWS(t) += BLOCK_NROWS(d);
	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *spec = &layout->aggs[i];

		switch ((AggKind) spec->kind)
		{
			case AGG_COUNT:
				FIELDS(CountFields, t, spec)->n += FIELDS(CountFields, d, spec)->n;
				break;

			case AGG_SUM_INT:
			case AGG_SUM_INT8:
			case AGG_AVG_INT:
				FIELDS(IntSumFields, t, spec)->n += FIELDS(IntSumFields, d, spec)->n;
				FIELDS(IntSumFields, t, spec)->s += FIELDS(IntSumFields, d, spec)->s;
				break;

			case AGG_SUM_FLOAT:
			case AGG_AVG_FLOAT:
				{
					FloatSumFields *tf = FIELDS(FloatSumFields, t, spec);
					FloatSumFields *df = FIELDS(FloatSumFields, d, spec);

					tf->n += df->n;
					tf->s += df->s;
					(void) specials_merge(&tf->sp, &df->sp, false);
					break;
				}

			case AGG_VAR_FLOAT:
				{
					FloatVarFields *tf = FIELDS(FloatVarFields, t, spec);
					FloatVarFields *df = FIELDS(FloatVarFields, d, spec);

					yc_combine(&tf->n, &tf->sx, &tf->sxx, df->n, df->sx, df->sxx);
					yc_combine(&tf->dn, &tf->dsx, &tf->dsxx, df->dn, df->dsx, df->dsxx);
					(void) specials_merge(&tf->sp, &df->sp, false);
					break;
				}

			case AGG_VAR_INT:
				{
					IntVarFields *tf = FIELDS(IntVarFields, t, spec);
					IntVarFields *df = FIELDS(IntVarFields, d, spec);

					tf->n += df->n;
					tf->sx += df->sx;
					tf->sxx += df->sxx;
					break;
				}

			case AGG_SUM_NUMERIC:
			case AGG_AVG_NUMERIC:
			case AGG_VAR_NUMERIC:
				combine_numeric(spec, FIELDS(NumericFields, t, spec),
								FIELDS(NumericFields, d, spec));
				break;

			case AGG_MIN:
			case AGG_MAX:
				combine_minmax(rt, i, FIELDS(MinMaxFields, t, spec),
							   FIELDS(MinMaxFields, d, spec));
				break;

			case AGG_BOOL_AND:
			case AGG_BOOL_OR:
				FIELDS(BoolFields, t, spec)->ntrue += FIELDS(BoolFields, d, spec)->ntrue;
				FIELDS(BoolFields, t, spec)->nfalse += FIELDS(BoolFields, d, spec)->nfalse;
				break;

			case AGG_GENERIC:
				AggGenericCombine(spec, t, d);
				break;
		}
	}
}

/*
 * AggKeepsFloatSums tells whether a layout has sums of floats, which can
 * overflow (AggWouldOverflow).
 */
bool
AggKeepsFloatSums(const ViewLayout *layout)
{
	for (int i = 0; i < layout->naggs; i++)
	{
		AggKind		kind = (AggKind) layout->aggs[i].kind;

		if (kind == AGG_SUM_FLOAT || kind == AGG_AVG_FLOAT || kind == AGG_VAR_FLOAT)
			return true;
	}
	return false;
}

/*
 * AggCanOverflow tells whether a layout's groups can fall in error
 * (AggResultOverflows): float sums out of range, and generic aggregates
 * whose states failed to combine.
 */
bool
AggCanOverflow(const ViewLayout *layout)
{
	return AggKeepsFloatSums(layout) || AggHasGeneric(layout);
}

/*
 * AggWouldOverflow tells whether adding (sign > 0) or removing one input
 * of a float aggregate to a delta would make the group's state, base
 * (NULL: empty) merged with that delta, overflow: sums of finite inputs
 * that become infinite, the error PostgreSQL's float8pl, float4pl and
 * float8_accum raise.  With an infinite or NaN input in the group the sum
 * is not finite anyway, and nothing overflows, as in PostgreSQL.  Other
 * aggregates never overflow here.
 */
bool
AggWouldOverflow(const AggRuntime *rt, int aggno, const char *base,
				 const char *delta, Datum value, int sign)
{
	const AggSpec *spec = &rt->layout->aggs[aggno];
	double		x;

	switch ((AggKind) spec->kind)
	{
		case AGG_SUM_FLOAT:
		case AGG_AVG_FLOAT:
			{
				FloatSumFields d = *FIELDS(FloatSumFields, delta, spec);
				FloatSumFields t = {0};
				double		s;

				x = float_arg(spec->argtype, value);
				if (!isfinite(x))
					return false;
				if (base)
					t = *FIELDS(FloatSumFields, base, spec);
				if (specials_count(&t.sp) + specials_count(&d.sp) > 0)
					return false;
				d.s += sign * x;
				s = t.s + d.s;
				if (isinf(d.s) || isinf(s))
					return true;
				/* sum(float4) adds in float4 */
				return spec->restype == FLOAT4OID && isinf((float4) s);
			}

		case AGG_VAR_FLOAT:
			{
				FloatVarFields d = *FIELDS(FloatVarFields, delta, spec);
				FloatVarFields t = {0};

				x = float_arg(spec->argtype, value);
				if (!isfinite(x))
					return false;
				if (base)
					t = *FIELDS(FloatVarFields, base, spec);
				if (specials_count(&t.sp) + specials_count(&d.sp) > 0)
					return false;
				if (sign > 0)
					yc_add(&d.n, &d.sx, &d.sxx, x);
				else
					yc_add(&d.dn, &d.dsx, &d.dsxx, x);
				if (!isfinite(d.sx) || !isfinite(d.sxx) ||
					!isfinite(d.dsx) || !isfinite(d.dsxx))
					return true;
				yc_combine(&t.n, &t.sx, &t.sxx, d.n, d.sx, d.sxx);
				yc_remove(&t.n, &t.sx, &t.sxx, d.dn, d.dsx, d.dsxx);
				return !isfinite(t.sx) || !isfinite(t.sxx);
			}

		default:
			return false;
	}
}

/*
 * AggResultOverflows tells whether one float aggregate of a group's state is
 * out of its result type's range: a sum (or sum of squares) of finite
 * inputs that became infinite or NaN, where PostgreSQL's float8pl,
 * float4pl and float8_accum raise "value out of range: overflow".  An
 * infinite or NaN input makes the result infinite or NaN without error, as
 * in PostgreSQL.
 */
bool
AggResultOverflows(const ViewLayout *layout, int aggno, const char *block)
{
	const AggSpec *spec = &layout->aggs[aggno];

	switch ((AggKind) spec->kind)
	{
		case AGG_SUM_FLOAT:
		case AGG_AVG_FLOAT:
			{
				const FloatSumFields *f = FIELDS(FloatSumFields, block, spec);

				if (specials_count(&f->sp) > 0)
					return false;
				if (!isfinite(f->s))
					return true;
				/* sum(float4) adds in float4 */
				return spec->kind == AGG_SUM_FLOAT && spec->restype == FLOAT4OID &&
					isinf((float4) f->s);
			}

		case AGG_VAR_FLOAT:
			{
				const FloatVarFields *f = FIELDS(FloatVarFields, block, spec);

				if (specials_count(&f->sp) > 0)
					return false;
				return !isfinite(f->sx) || !isfinite(f->sxx);
			}

		case AGG_GENERIC:
			return (FIELDS(GenericFields, block, spec)->flags & GEN_FAILED) != 0;

		default:
			return false;
	}
}

/*
 * AggInputMagnitude is |x| for a finite input of a float sum or average, 0
 * for any other input: the scale of what a delta added and removed, for
 * AggLostPrecision.
 */
double
AggInputMagnitude(const ViewLayout *layout, int aggno, Datum value)
{
	const AggSpec *spec = &layout->aggs[aggno];
	double		x;

	if (spec->kind != AGG_SUM_FLOAT && spec->kind != AGG_AVG_FLOAT)
		return 0.0;
	x = fabs(float_arg(spec->argtype, value));
	return isfinite(x) ? x : 0.0;
}

/* Whether value is much smaller than scale: the bits that tell it are lost. */
static inline bool
cancelled(double value, double scale)
{
	return fabs(value) < scale * (1.0 / LOST_PRECISION_RATIO);
}

/*
 * AggLostPrecision tells whether merging a delta that removes rows into a
 * group's state (before; after is the result) may have lost the precision
 * of a float sum or variance: the result is much smaller than what was
 * added and removed (magnitude: per aggregate, the largest |input| of
 * the delta's sums),
 * so that what rounding absorbed into those larger values is now most of
 * it (1e20 + 1 - 1e20 gives 0).  The group is then recomputed from its
 * table, as the batch query would sum the rows that are left.
 */
bool
AggLostPrecision(const ViewLayout *layout, const char *before, const char *delta,
				 const char *after, const double *magnitude)
{
	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *spec = &layout->aggs[i];

		switch ((AggKind) spec->kind)
		{
			case AGG_SUM_FLOAT:
			case AGG_AVG_FLOAT:
				{
					const FloatSumFields *b = FIELDS(FloatSumFields, before, spec);
					const FloatSumFields *d = FIELDS(FloatSumFields, delta, spec);
					const FloatSumFields *a = FIELDS(FloatSumFields, after, spec);

					if (a->n > 0 && specials_count(&a->sp) == 0 &&
						cancelled(a->s, Max(Max(fabs(b->s), fabs(d->s)), magnitude[i])))
						return true;
					break;
				}

			case AGG_VAR_FLOAT:
				{
					const FloatVarFields *b = FIELDS(FloatVarFields, before, spec);
					const FloatVarFields *d = FIELDS(FloatVarFields, delta, spec);
					const FloatVarFields *a = FIELDS(FloatVarFields, after, spec);

					if (d->dn == 0.0 || a->n == 0.0 || specials_count(&a->sp) > 0)
						break;
					if (cancelled(a->sx, Max(Max(fabs(b->sx), fabs(d->sx)), fabs(d->dsx))) ||
						cancelled(a->sxx, Max(Max(b->sxx, d->sxx), d->dsxx)))
						return true;
					break;
				}

			default:
				break;
		}
	}
	return false;
}

/*
 * AggOverflowed tells whether any float aggregate of a group's state is out
 * of range (AggResultOverflows): the group is then in error, and so is every
 * read of its view.
 */
bool
AggOverflowed(const ViewLayout *layout, const char *block)
{
	for (int i = 0; i < layout->naggs; i++)
		if (AggResultOverflows(layout, i, block))
			return true;
	return false;
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
