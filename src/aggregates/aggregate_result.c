/*-------------------------------------------------------------------------
 *
 * aggregate_result.c
 *	  The result of each aggregate from a group's state block (AggFinalize);
 *	  the serialized state kept in state tables is state_format.c's.
 *
 * Results are PostgreSQL's own: the aggregate's final function runs on a
 * transition state rebuilt from the fields (an int8[] or float8[] array, or
 * the serialized form of an internal state), so result types, NULLs,
 * display scales and rounding are those of the batch query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "libpq/pqformat.h"
#include "nodes/execnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/float.h"
#include "utils/regproc.h"

#include "aggregates/aggregate_state.h"

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
float_special_sum(const Specials *sp, double finite)
{
	if (sp->nan > 0 || (sp->pinf > 0 && sp->ninf > 0))
		return get_float8_nan();
	if (sp->pinf > 0)
		return get_float8_infinity();
	if (sp->ninf > 0)
		return -get_float8_infinity();
	return finite;
}

static Datum
numeric_special(const Specials *sp, bool *special)
{
	const char *word = NULL;

	if (sp->nan > 0 || (sp->pinf > 0 && sp->ninf > 0))
		word = "NaN";
	else if (sp->pinf > 0)
		word = "Infinity";
	else if (sp->ninf > 0)
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
	if (AggResultOverflows(layout, aggno, block))
	{
		if (overflow == NULL && spec->kind == AGG_GENERIC)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("partial states of aggregate %s could not be combined in a group of this view",
							format_procedure(spec->aggfnoid)),
					 errdetail("Its combine function failed, as its rows make the defining query fail run as a batch query (a sum out of its type's range, say)."),
					 errhint("Delete the rows that make it fail; the group is recomputed then.")));
		if (overflow == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("value out of range: overflow")));
		*overflow = true;
		*value = (Datum) 0;
		*isnull = true;
		return;
	}
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

				if (f->n + specials_count(&f->sp) == 0)
					break;
				s = float_special_sum(&f->sp, f->s);
				*value = spec->restype == FLOAT4OID ? Float4GetDatum((float4) s) : Float8GetDatum(s);
				return;
			}

		case AGG_AVG_FLOAT:
			{
				FloatSumFields *f = FIELDS(FloatSumFields, block, spec);
				int64		total = f->n + specials_count(&f->sp);

				if (total == 0)
					break;
				*value = Float8GetDatum(float_special_sum(&f->sp, f->s) / total);
				return;
			}

		case AGG_VAR_FLOAT:
			{
				FloatVarFields *f = FIELDS(FloatVarFields, block, spec);
				double		total = f->n + specials_count(&f->sp);
				double		sx = f->sx;
				double		sxx = f->sxx;

				if (specials_count(&f->sp) > 0)
				{
					sx = float_special_sum(&f->sp, sx);
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

				if (f->n + specials_count(&f->sp) == 0)
					break;
				*value = numeric_special(&f->sp, &special);
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
				pq_sendint64(&buf, f->sp.nan);
				pq_sendint64(&buf, f->sp.pinf);
				pq_sendint64(&buf, f->sp.ninf);
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

		case AGG_GENERIC:
			AggGenericFinalize(spec, block, value, isnull);
			return;
	}
	*value = (Datum) 0;
	*isnull = true;
}
