/*-------------------------------------------------------------------------
 *
 * shared_block.c
 *	  The packed form of a group's state, in which shared memory keeps it
 *	  (layout.h): where each aggregate's fields go (AggLayoutPack), and the
 *	  conversions from and to the local form (AggPack, AggUnpack).
 *
 * A group's state in shared memory is the state of its rows, never a
 * delta, so the packed form drops what only a delta holds: the deleted
 * best value of min and max and its flags (a group with non-null inputs
 * always has its best value), the deleted sums of the variance family and
 * the deleted display scale of numeric sums.  It also drops what repeats:
 *
 *	- count(*) without FILTER is the group's row count;
 *	- aggregates over the same arguments and FILTER whose fields are the
 *	  same (sum and avg of one type, every member of the variance family,
 *	  bool_and and bool_or, two min or two max of one ordering) keep them
 *	  once: the first of them owns the fields, the others read them;
 *	- min and max over one argument keep its count of non-null inputs once.
 *
 * The infinities and NaNs of sum and avg (float and numeric) are kept as
 * three presence bits, not counts: their results and their NULLs depend
 * only on whether there are some, and AggMerge recomputes a group from
 * which a delta removes some (aggregate.c).  The variance family keeps its
 * counts, which its results depend on (two NaNs: var_samp is NaN, not
 * NULL).
 *
 * Fields are written one after the other with memcpy, unaligned; var
 * fields (numeric sums, min/max of by-reference types) take the bytes of a
 * dsa_pointer at var_shared[i], which state_store.c fills and reads:
 * AggPack and AggUnpack never touch them.
 *
 *	header				nrows int64
 *	count				n int64
 *	sum/avg of integers	n int64, s int128
 *	sum/avg of floats	n int64, s float8, specials bits uint8
 *	variance of floats	n, sx, sxx float8, specials int64 x 3
 *	variance of int2/4	n int64, sx int128, sxx int128
 *	numeric sum/avg/var	n int64, sx var, sxx var (variance only),
 *						specials (bits for sum/avg, int64 x 3 for the
 *						variance), scale int32, scale_count int64
 *	min/max				nn int64 (unless count_of), val: by value in the
 *						type's length, else a var
 *	bool_and/bool_or	ntrue int64, nfalse int64
 *	generic				flags uint8, the transition state: by value in
 *						its type's length, else a var
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/dsa.h"

#include "aggregates/aggregate.h"
#include "aggregates/aggregate_state.h"

#define SPECIAL_NAN		0x01
#define SPECIAL_PINF	0x02
#define SPECIAL_NINF	0x04

/* A var field in the packed form: a dsa_pointer, which state_store.c fills. */
#define VAR_SIZE		((int32) sizeof(dsa_pointer))

/* Which aggregates keep the same fields for the same input. */
static int
field_class(const AggSpec *spec)
{
	switch ((AggKind) spec->kind)
	{
		case AGG_SUM_INT:
		case AGG_SUM_INT8:
		case AGG_AVG_INT:
			return AGG_SUM_INT;
		case AGG_SUM_FLOAT:
		case AGG_AVG_FLOAT:
			return AGG_SUM_FLOAT;
		case AGG_BOOL_AND:
		case AGG_BOOL_OR:
			return AGG_BOOL_AND;
		default:
			return spec->kind;
	}
}

/* Whether an aggregate's fields may be another's: none of them is a var. */
static bool
can_share_fields(const AggSpec *spec)
{
	switch ((AggKind) spec->kind)
	{
		case AGG_SUM_NUMERIC:
		case AGG_AVG_NUMERIC:
		case AGG_VAR_NUMERIC:
			return false;
		case AGG_MIN:
		case AGG_MAX:
			return spec->valbyval;
		case AGG_GENERIC:
			return false;
		default:
			return true;
	}
}

/* Whether two aggregates over the same input have the same fields. */
static bool
same_fields(const AggSpec *a, const AggSpec *b)
{
	if (field_class(a) != field_class(b) || a->argtype != b->argtype)
		return false;
	if (a->kind == AGG_MIN || a->kind == AGG_MAX)
		return a->aggfnoid == b->aggfnoid && a->inputcollid == b->inputcollid;
	return true;
}

/* Whether a kind keeps its specials as presence bits. */
static inline bool
specials_as_bits(const AggSpec *spec)
{
	return spec->kind != AGG_VAR_FLOAT && spec->kind != AGG_VAR_NUMERIC;
}

/* The bytes of an aggregate's own fields in the packed form. */
static int32
packed_size(const AggSpec *spec)
{
	switch ((AggKind) spec->kind)
	{
		case AGG_COUNT:
			return 8;
		case AGG_SUM_INT:
		case AGG_SUM_INT8:
		case AGG_AVG_INT:
			return 8 + 16;
		case AGG_SUM_FLOAT:
		case AGG_AVG_FLOAT:
			return 8 + 8 + 1;
		case AGG_VAR_FLOAT:
			return 3 * 8 + 3 * 8;
		case AGG_VAR_INT:
			return 8 + 16 + 16;
		case AGG_SUM_NUMERIC:
		case AGG_AVG_NUMERIC:
			return 8 + VAR_SIZE + 1 + 4 + 8;
		case AGG_VAR_NUMERIC:
			return 8 + 2 * VAR_SIZE + 3 * 8 + 4 + 8;
		case AGG_MIN:
		case AGG_MAX:
			return (spec->count_of >= 0 ? 0 : 8) +
				(spec->valbyval ? spec->vallen : VAR_SIZE);
		case AGG_BOOL_AND:
		case AGG_BOOL_OR:
			return 8 + 8;
		case AGG_GENERIC:
			return 1 + (spec->valbyval ? spec->vallen : VAR_SIZE);
	}
	elog(ERROR, "unknown flowstate aggregate kind %d", spec->kind);
	return 0;
}

/*
 * AggLayoutPack decides which fields each aggregate keeps in the packed
 * form and where, from the offsets and var fields AggLayoutPlace gave and
 * the inputs of the aggregates (spec->input).
 */
void
AggLayoutPack(ViewLayout *layout)
{
	int32		offset = sizeof(int64);	/* nrows */
	int			var = 0;

	for (int i = 0; i < layout->naggs; i++)
	{
		AggSpec    *spec = &layout->aggs[i];

		spec->fields_of = AGG_OWN_FIELDS;
		spec->count_of = -1;
		spec->shared_offset = offset;

		if (spec->kind == AGG_COUNT && spec->argtype == InvalidOid && !spec->has_filter)
			spec->fields_of = AGG_NROWS_FIELD;
		else if (can_share_fields(spec))
		{
			for (int j = 0; j < i; j++)
			{
				const AggSpec *other = &layout->aggs[j];

				if (other->input == spec->input && other->fields_of == AGG_OWN_FIELDS &&
					same_fields(other, spec))
				{
					spec->fields_of = j;
					spec->shared_offset = other->shared_offset;
					break;
				}
			}
		}
		if (spec->fields_of == AGG_OWN_FIELDS &&
			(spec->kind == AGG_MIN || spec->kind == AGG_MAX))
		{
			for (int j = 0; j < i; j++)
			{
				const AggSpec *other = &layout->aggs[j];

				if (other->input == spec->input && other->count_of < 0 &&
					other->fields_of == AGG_OWN_FIELDS &&
					(other->kind == AGG_MIN || other->kind == AGG_MAX))
				{
					spec->count_of = j;
					break;
				}
			}
		}
		if (spec->fields_of != AGG_OWN_FIELDS)
			continue;

		/* the var fields, in AggLayoutPlace's order */
		switch ((AggKind) spec->kind)
		{
			case AGG_SUM_NUMERIC:
			case AGG_AVG_NUMERIC:
				layout->var_shared[var++] = offset + 8;
				break;
			case AGG_VAR_NUMERIC:
				layout->var_shared[var++] = offset + 8;
				layout->var_shared[var++] = offset + 8 + VAR_SIZE;
				break;
			case AGG_MIN:
			case AGG_MAX:
				if (!spec->valbyval)
				{
					layout->var_shared[var++] = offset + (spec->count_of >= 0 ? 0 : 8);
					layout->var_shared[var++] = -1;	/* delval: a delta's only */
				}
				break;
			case AGG_GENERIC:
				if (!spec->valbyval)
					layout->var_shared[var++] = offset + 1;
				break;
			default:
				break;
		}
		offset += packed_size(spec);
	}
	Assert(var == layout->nvars);
	layout->shared_size = offset;
}

/* Writing and reading the packed form: a cursor. */
static inline void
put(char **p, const void *v, Size len)
{
	memcpy(*p, v, len);
	*p += len;
}

static inline void
get(const char **p, void *v, Size len)
{
	memcpy(v, *p, len);
	*p += len;
}

static inline void
put_bits(char **p, const Specials *sp)
{
	uint8		bits = (sp->nan > 0 ? SPECIAL_NAN : 0) |
		(sp->pinf > 0 ? SPECIAL_PINF : 0) |
		(sp->ninf > 0 ? SPECIAL_NINF : 0);

	put(p, &bits, 1);
}

static inline void
get_bits(const char **p, Specials *sp)
{
	uint8		bits;

	get(p, &bits, 1);
	sp->nan = (bits & SPECIAL_NAN) ? 1 : 0;
	sp->pinf = (bits & SPECIAL_PINF) ? 1 : 0;
	sp->ninf = (bits & SPECIAL_NINF) ? 1 : 0;
}

/*
 * AggPack writes a group's state, a block in the local form, into its
 * packed form, but for the var fields (state_store.c writes those).
 */
void
AggPack(const ViewLayout *layout, const char *block, char *shared)
{
	char	   *p = shared;

	put(&p, block, sizeof(int64));
	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *spec = &layout->aggs[i];
		const char *f = block + spec->offset;

		if (spec->fields_of != AGG_OWN_FIELDS)
			continue;
		Assert(p == shared + spec->shared_offset);
		switch ((AggKind) spec->kind)
		{
			case AGG_COUNT:
				put(&p, &((const CountFields *) f)->n, 8);
				break;
			case AGG_SUM_INT:
			case AGG_SUM_INT8:
			case AGG_AVG_INT:
				put(&p, &((const IntSumFields *) f)->n, 8);
				put(&p, &((const IntSumFields *) f)->s, 16);
				break;
			case AGG_SUM_FLOAT:
			case AGG_AVG_FLOAT:
				put(&p, &((const FloatSumFields *) f)->n, 8);
				put(&p, &((const FloatSumFields *) f)->s, 8);
				put_bits(&p, &((const FloatSumFields *) f)->sp);
				break;
			case AGG_VAR_FLOAT:
				{
					const FloatVarFields *v = (const FloatVarFields *) f;

					Assert(v->dn == 0.0 && v->dsx == 0.0 && v->dsxx == 0.0);
					put(&p, &v->n, 8);
					put(&p, &v->sx, 8);
					put(&p, &v->sxx, 8);
					put(&p, &v->sp, sizeof(Specials));
					break;
				}
			case AGG_VAR_INT:
				put(&p, &((const IntVarFields *) f)->n, 8);
				put(&p, &((const IntVarFields *) f)->sx, 16);
				put(&p, &((const IntVarFields *) f)->sxx, 16);
				break;
			case AGG_SUM_NUMERIC:
			case AGG_AVG_NUMERIC:
			case AGG_VAR_NUMERIC:
				{
					const NumericFields *v = (const NumericFields *) f;

					Assert(v->del_scale_count == 0);
					put(&p, &v->n, 8);
					p += spec->kind == AGG_VAR_NUMERIC ? 2 * VAR_SIZE : VAR_SIZE;
					if (specials_as_bits(spec))
						put_bits(&p, &v->sp);
					else
						put(&p, &v->sp, sizeof(Specials));
					put(&p, &v->scale, 4);
					put(&p, &v->scale_count, 8);
					break;
				}
			case AGG_MIN:
			case AGG_MAX:
				{
					const MinMaxFields *v = (const MinMaxFields *) f;

					Assert(!(v->flags & MM_HAS_DEL));
					Assert(v->nn == 0 || (v->flags & MM_HAS_VAL));
					if (spec->count_of < 0)
						put(&p, &v->nn, 8);
					if (spec->valbyval)
					{
						flat_store_byval(p, spec->vallen, v->val);
						p += spec->vallen;
					}
					else
						p += VAR_SIZE;
					break;
				}
			case AGG_BOOL_AND:
			case AGG_BOOL_OR:
				put(&p, &((const BoolFields *) f)->ntrue, 8);
				put(&p, &((const BoolFields *) f)->nfalse, 8);
				break;
			case AGG_GENERIC:
				{
					const GenericFields *v = (const GenericFields *) f;
					uint8		flags = (uint8) v->flags;

					Assert(v->ndeleted == 0);
					put(&p, &flags, 1);
					if (spec->valbyval)
					{
						flat_store_byval(p, spec->vallen, v->state);
						p += spec->vallen;
					}
					else
						p += VAR_SIZE;
					break;
				}
		}
	}
	Assert(p == shared + layout->shared_size);
}

/*
 * AggUnpack reads a packed state into a block in the local form, its var
 * fields NULL (state_store.c fills them).
 */
void
AggUnpack(const ViewLayout *layout, const char *shared, char *block)
{
	const char *p = shared;

	memset(block, 0, layout->block_size);
	get(&p, block, sizeof(int64));
	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *spec = &layout->aggs[i];
		char	   *f = block + spec->offset;

		if (spec->fields_of == AGG_NROWS_FIELD)
		{
			((CountFields *) f)->n = BLOCK_NROWS(block);
			continue;
		}
		if (spec->fields_of != AGG_OWN_FIELDS)
		{
			const AggSpec *owner = &layout->aggs[spec->fields_of];

			memcpy(f, block + owner->offset, AggFieldsSize(spec));
			continue;
		}
		switch ((AggKind) spec->kind)
		{
			case AGG_COUNT:
				get(&p, &((CountFields *) f)->n, 8);
				break;
			case AGG_SUM_INT:
			case AGG_SUM_INT8:
			case AGG_AVG_INT:
				get(&p, &((IntSumFields *) f)->n, 8);
				get(&p, &((IntSumFields *) f)->s, 16);
				break;
			case AGG_SUM_FLOAT:
			case AGG_AVG_FLOAT:
				get(&p, &((FloatSumFields *) f)->n, 8);
				get(&p, &((FloatSumFields *) f)->s, 8);
				get_bits(&p, &((FloatSumFields *) f)->sp);
				break;
			case AGG_VAR_FLOAT:
				get(&p, &((FloatVarFields *) f)->n, 8);
				get(&p, &((FloatVarFields *) f)->sx, 8);
				get(&p, &((FloatVarFields *) f)->sxx, 8);
				get(&p, &((FloatVarFields *) f)->sp, sizeof(Specials));
				break;
			case AGG_VAR_INT:
				get(&p, &((IntVarFields *) f)->n, 8);
				get(&p, &((IntVarFields *) f)->sx, 16);
				get(&p, &((IntVarFields *) f)->sxx, 16);
				break;
			case AGG_SUM_NUMERIC:
			case AGG_AVG_NUMERIC:
			case AGG_VAR_NUMERIC:
				{
					NumericFields *v = (NumericFields *) f;

					get(&p, &v->n, 8);
					p += spec->kind == AGG_VAR_NUMERIC ? 2 * VAR_SIZE : VAR_SIZE;
					if (specials_as_bits(spec))
						get_bits(&p, &v->sp);
					else
						get(&p, &v->sp, sizeof(Specials));
					get(&p, &v->scale, 4);
					get(&p, &v->scale_count, 8);
					break;
				}
			case AGG_MIN:
			case AGG_MAX:
				{
					MinMaxFields *v = (MinMaxFields *) f;

					if (spec->count_of >= 0)
						v->nn = FIELDS(MinMaxFields, block, &layout->aggs[spec->count_of])->nn;
					else
						get(&p, &v->nn, 8);
					if (spec->valbyval)
					{
						v->val = flat_fetch_byval(p, spec->vallen);
						p += spec->vallen;
					}
					else
						p += VAR_SIZE;
					v->flags = v->nn > 0 ? MM_HAS_VAL : 0;
					break;
				}
			case AGG_BOOL_AND:
			case AGG_BOOL_OR:
				get(&p, &((BoolFields *) f)->ntrue, 8);
				get(&p, &((BoolFields *) f)->nfalse, 8);
				break;
			case AGG_GENERIC:
				{
					GenericFields *v = (GenericFields *) f;
					uint8		flags;

					get(&p, &flags, 1);
					v->flags = flags;
					if (spec->valbyval)
					{
						v->state = flat_fetch_byval(p, spec->vallen);
						p += spec->vallen;
					}
					else
						p += VAR_SIZE;
					break;
				}
		}
	}
}
