/*-------------------------------------------------------------------------
 *
 * layout.h
 *	  The flat description of a continuous view's groups: its key columns
 *	  and the byte layout of its aggregate state.
 *
 * Wording: a *group* is one output row of a view (one combination of key
 * values); its *state block* holds, at fixed offsets, the row count of the
 * group and one field set per aggregate.  A block exists in two forms that
 * differ only in its *var fields* (numeric sums, min/max of by-reference
 * types): in the *local* form a var field holds a pointer to a palloc'd
 * varlena, in the *shared* form a dsa_pointer (state_store.c converts).
 * Everything in aggregate.c works on the local form.
 *
 * Shared memory holds a third, *packed* form (shared_block.c): the fields
 * of a group's state without padding, without what only a delta uses
 * (deleted values and sums), with the infinities and NaNs of a sum as
 * presence bits, and without the fields that repeat others: count(*) is
 * the block's row count, two aggregates over the same argument and filter
 * whose fields are the same (sum and avg, bool_and and bool_or) keep them
 * once, and min and max over one argument keep its count of non-null
 * inputs once.  An aggregate's place in it is its shared_offset; the
 * packed form is shared_size bytes, read and written only with memcpy.
 *
 * A ViewLayout has no pointers, so the decoding worker copies it into
 * shared memory once and any backend can read a view's groups with it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_LAYOUT_H
#define FLOWSTATE_LAYOUT_H

#define FLOWSTATE_MAX_KEYS	32
#define FLOWSTATE_MAX_AGGS	64
#define FLOWSTATE_MAX_VARS	(2 * FLOWSTATE_MAX_AGGS)
#define FLOWSTATE_MAX_GENERIC_ARGS 6

/* The native aggregates and the fields each keeps (aggregate.c). */
typedef enum AggKind
{
	AGG_COUNT,					/* count(*), count(x) */
	AGG_SUM_INT,				/* sum(int2/int4) -> int8 */
	AGG_SUM_INT8,				/* sum(int8) -> numeric */
	AGG_AVG_INT,				/* avg(int2/int4/int8) -> numeric */
	AGG_SUM_FLOAT,				/* sum(float4) -> float4, sum(float8) -> float8 */
	AGG_AVG_FLOAT,				/* avg(float4/float8) -> float8 */
	AGG_VAR_FLOAT,				/* variance family over float4/float8 */
	AGG_VAR_INT,				/* variance family over int2/int4 */
	AGG_SUM_NUMERIC,			/* sum(numeric) */
	AGG_AVG_NUMERIC,			/* avg(numeric) */
	AGG_VAR_NUMERIC,			/* variance family over int8/numeric */
	AGG_MIN,					/* min(x) of any btree-ordered type */
	AGG_MAX,					/* max(x) of any btree-ordered type */
	AGG_BOOL_AND,				/* bool_and, every */
	AGG_BOOL_OR,				/* bool_or */
	AGG_GENERIC					/* any aggregate with a combine function,
								 * through its own support functions
								 * (generic.c) */
} AggKind;

/* Which member of the variance family an AGG_VAR_* computes. */
typedef enum VarVariant
{
	VARIANT_NONE = 0,
	VARIANT_VAR_SAMP,			/* var_samp, variance */
	VARIANT_VAR_POP,
	VARIANT_STDDEV_SAMP,		/* stddev_samp, stddev */
	VARIANT_STDDEV_POP
} VarVariant;

typedef struct KeySpec
{
	Oid			type;
	int32		typmod;
	Oid			collation;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	bool		bitwise;		/* equality is equality of the bytes */
	bool		is_window;		/* the start of a tumbling window */
} KeySpec;

typedef struct AggSpec
{
	int16		kind;			/* AggKind */
	int16		variant;		/* VarVariant */
	Oid			aggfnoid;
	Oid			argtype;		/* type of the argument, InvalidOid for count(*) */
	Oid			restype;		/* result type */
	int32		restypmod;
	Oid			rescollation;
	Oid			inputcollid;	/* collation of comparisons (min/max) */
	int16		vallen;			/* min/max: length of the value type; generic:
								 * of the transition type (-1 for internal,
								 * kept serialized) */
	bool		valbyval;		/* min/max, generic: passed by value */
	bool		has_filter;		/* FILTER (WHERE ...) */
	int16		input;			/* the first aggregate with the same arguments
								 * and FILTER (itself if none) */
	int16		fields_of;		/* AGG_OWN_FIELDS, AGG_NROWS_FIELD, or the
								 * aggregate whose packed fields are its own */
	int16		count_of;		/* min/max: the aggregate whose packed count of
								 * non-null inputs is its own, or -1 */
	int16		nargs;			/* generic: its arguments */
	Oid			argtypes[FLOWSTATE_MAX_GENERIC_ARGS];	/* generic: their types */
	int32		offset;			/* of this aggregate's fields in the block */
	int32		shared_offset;	/* of its fields in the packed form */
} AggSpec;

#define AGG_OWN_FIELDS	(-1)
#define AGG_NROWS_FIELD	(-2)	/* count(*) without FILTER: the row count */

typedef struct ViewLayout
{
	int16		nkeys;
	int16		naggs;
	int16		nvars;
	bool		scalar;			/* no GROUP BY: one group that always exists */
	int32		block_size;
	int32		shared_size;	/* of the packed form */
	int32		var_offsets[FLOWSTATE_MAX_VARS];
	int32		var_shared[FLOWSTATE_MAX_VARS];	/* their dsa_pointers' offsets
												 * in the packed form */
	KeySpec		keys[FLOWSTATE_MAX_KEYS];
	AggSpec		aggs[FLOWSTATE_MAX_AGGS];
} ViewLayout;

/*
 * A by-value datum in its type's length (1, 2, 4 or 8 bytes), unaligned:
 * how the flat forms (packed states, flat keys) keep by-value values.
 */
static inline void
flat_store_byval(char *p, int16 typlen, Datum value)
{
	switch (typlen)
	{
		case 8:
			{
				int64		v = DatumGetInt64(value);

				memcpy(p, &v, 8);
				return;
			}
		case 4:
			{
				int32		v = DatumGetInt32(value);

				memcpy(p, &v, 4);
				return;
			}
		case 2:
			{
				int16		v = DatumGetInt16(value);

				memcpy(p, &v, 2);
				return;
			}
		default:
			*p = DatumGetChar(value);
			return;
	}
}

static inline Datum
flat_fetch_byval(const char *p, int16 typlen)
{
	switch (typlen)
	{
		case 8:
			{
				int64		v;

				memcpy(&v, p, 8);
				return Int64GetDatum(v);
			}
		case 4:
			{
				int32		v;

				memcpy(&v, p, 4);
				return Int32GetDatum(v);
			}
		case 2:
			{
				int16		v;

				memcpy(&v, p, 2);
				return Int16GetDatum(v);
			}
		default:
			return CharGetDatum(*p);
	}
}

/* Every block starts with the number of rows in the group. */
#define BLOCK_NROWS(block)	(*(int64 *) (block))
#define BLOCK_HEADER_SIZE	MAXALIGN(sizeof(int64))

#endif							/* FLOWSTATE_LAYOUT_H */
