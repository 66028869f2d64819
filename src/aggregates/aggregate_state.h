/*-------------------------------------------------------------------------
 *
 * aggregate_state.h
 *	  The fields each native aggregate keeps in a group's state block
 *	  (aggregate.c accumulates and merges them, aggregate_result.c turns
 *	  them into results, state_format.c into serialized state).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_AGGREGATE_STATE_H
#define FLOWSTATE_AGGREGATE_STATE_H

#include "utils/numeric.h"

#include "aggregates/aggregate.h"

/* Fields of each aggregate kind; every struct is 8-byte aligned. */

/* Float and numeric inputs that are not finite: counted, not summed. */
typedef struct Specials
{
	int64		nan;
	int64		pinf;
	int64		ninf;
} Specials;

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
	Specials	sp;
} FloatSumFields;

typedef struct FloatVarFields	/* AGG_VAR_FLOAT: Youngs-Cramer sums */
{
	double		n;				/* finite inputs (inserted, in a delta) */
	double		sx;
	double		sxx;
	double		dn;				/* deleted finite inputs, in a delta */
	double		dsx;
	double		dsxx;
	Specials	sp;
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
	Specials	sp;
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

#define GEN_HAS_STATE	0x01
#define GEN_FAILED		0x02	/* states that could not be combined: the
								 * group is in error (AggResultOverflows) */

typedef struct GenericFields	/* AGG_GENERIC (generic.c) */
{
	int64		ndeleted;		/* inputs removed, in a delta */
	Datum		state;			/* the transition state: by value, else a var
								 * field (0: NULL) */
	int32		flags;			/* GEN_HAS_STATE: else the initial state;
								 * GEN_FAILED */
	int32		pad;
} GenericFields;

#define FIELDS(type, block, spec)	((type *) ((block) + (spec)->offset))

/*
 * min/max values of by-reference types live in var fields, which hold
 * varlenas: a fixed-length value is wrapped after an 8-byte header, so that
 * it stays aligned.
 */
#define MM_WRAP_HEADER 8

static inline Datum
minmax_value(const AggSpec *spec, Datum stored)
{
	if (!spec->valbyval && spec->vallen > 0)
		return PointerGetDatum(DatumGetPointer(stored) + MM_WRAP_HEADER);
	return stored;
}

static inline int64
specials_count(const Specials *sp)
{
	return sp->nan + sp->pinf + sp->ninf;
}

static inline Numeric
numeric_or_zero(Datum d)
{
	return d == (Datum) 0 ? int64_to_numeric(0) : DatumGetNumeric(d);
}

/* generic.c */
extern bool AggGenericAdvance(const AggSpec *spec, const char *block, const Datum *args,
							  const bool *nulls, GenericFields *out);
extern void AggGenericCombine(const AggSpec *spec, char *t, const char *d);
extern void AggGenericFinalize(const AggSpec *spec, const char *block, Datum *value,
							   bool *isnull);

#endif							/* FLOWSTATE_AGGREGATE_STATE_H */
