/*-------------------------------------------------------------------------
 *
 * group.c
 *	  Group keys of continuous views.
 *
 * Two rows belong to the same group when their GROUP BY values are equal by
 * the types' own equality, as in PostgreSQL's hash aggregation: 1.0 and
 * 1.00 are one numeric group, -0.0 and 0.0 one float group.  Keys hash with
 * the type's hash function, except where equality is equality of the bytes
 * (integers, timestamps, text under a deterministic collation...), which
 * take a faster path.  NULLs form a group of their own.
 *
 * The flat form of a key, stored with its group in shared memory, is one
 * null flag byte per column, then each non-NULL value without padding:
 * by-value types in their length (copied in and out with memcpy), other
 * fixed-length ones as their bytes, varlenas detoasted with a 4-byte
 * header.  By-reference values read back point into it, unaligned, as
 * values in shared memory already were (the platforms PostgreSQL 15 runs
 * on with this extension, x86-64 and ARM64, read them so).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/pg_locale.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "state/group.h"

#define KEY_HEADER_SIZE(nkeys) (nkeys)

/*
 * GroupKeyTypeUsable tells whether a type can be a group key (it has hash
 * equality), and whether its equality is equality of the bytes.
 */
bool
GroupKeyTypeUsable(Oid type, Oid collation, bool *bitwise)
{
	TypeCacheEntry *tce = lookup_type_cache(type, TYPECACHE_HASH_PROC | TYPECACHE_EQ_OPR);

	*bitwise = false;
	if (!OidIsValid(tce->hash_proc) || !OidIsValid(tce->eq_opr) || tce->typlen == -2)
		return false;

	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case BOOLOID:
		case CHAROID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
		case UUIDOID:
			*bitwise = true;
			break;
		case TEXTOID:
		case VARCHAROID:
			*bitwise = !OidIsValid(collation) ||
				get_collation_isdeterministic(collation);
			break;
		default:
			break;
	}
	return true;
}

/*
 * GroupKeysCreate looks up the hash and equality functions of a layout's
 * key columns, in CurrentMemoryContext.
 */
GroupKeys *
GroupKeysCreate(const ViewLayout *layout)
{
	GroupKeys  *gk = palloc0(sizeof(GroupKeys));

	gk->layout = layout;
	for (int i = 0; i < layout->nkeys; i++)
	{
		TypeCacheEntry *tce = lookup_type_cache(layout->keys[i].type,
												TYPECACHE_HASH_PROC | TYPECACHE_EQ_OPR);

		if (!OidIsValid(tce->hash_proc) || !OidIsValid(tce->eq_opr))
			elog(ERROR, "type %u has no hash equality", layout->keys[i].type);
		fmgr_info(tce->hash_proc, &gk->hash[i]);
		fmgr_info(get_opcode(tce->eq_opr), &gk->eq[i]);
	}
	return gk;
}

static inline uint32
hash_datum64(Datum d)
{
	uint64		v = (uint64) d;

	return hash_combine(murmurhash32((uint32) v), murmurhash32((uint32) (v >> 32)));
}

/*
 * GroupKeyHash hashes the key values of one row.  Varlena values must be
 * detoasted (GroupKeyDetoast).
 */
uint32
GroupKeyHash(const GroupKeys *gk, const Datum *values, const bool *isnull)
{
	const ViewLayout *layout = gk->layout;
	uint32		h = 0x9e3779b9;

	for (int i = 0; i < layout->nkeys; i++)
	{
		const KeySpec *key = &layout->keys[i];
		uint32		kh;

		if (isnull[i])
			kh = 0x5bd1e995;
		else if (key->bitwise && key->typbyval)
			kh = hash_datum64(values[i]);
		else if (key->bitwise && key->typlen == -1)
			kh = hash_bytes((unsigned char *) VARDATA_ANY(DatumGetPointer(values[i])),
							VARSIZE_ANY_EXHDR(DatumGetPointer(values[i])));
		else if (key->bitwise)
			kh = hash_bytes((unsigned char *) DatumGetPointer(values[i]), key->typlen);
		else
			kh = DatumGetUInt32(FunctionCall1Coll((FmgrInfo *) &gk->hash[i],
												  key->collation, values[i]));
		h = hash_combine(h, kh);
	}
	return h;
}

/*
 * GroupKeyDetoast replaces toasted or short-header varlena key values by
 * plain copies in CurrentMemoryContext.
 */
void
GroupKeyDetoast(const ViewLayout *layout, Datum *values, const bool *isnull)
{
	for (int i = 0; i < layout->nkeys; i++)
	{
		if (!isnull[i] && layout->keys[i].typlen == -1)
			values[i] = PointerGetDatum(PG_DETOAST_DATUM(values[i]));
	}
}

static Size
value_size(const KeySpec *key, Datum value)
{
	if (key->typlen > 0)
		return key->typlen;
	return VARSIZE(DatumGetPointer(value));
}

/*
 * GroupKeySize returns the size of the flat form of a key (values
 * detoasted).
 */
Size
GroupKeySize(const ViewLayout *layout, const Datum *values, const bool *isnull)
{
	Size		size = KEY_HEADER_SIZE(layout->nkeys);

	for (int i = 0; i < layout->nkeys; i++)
	{
		if (!isnull[i])
			size += value_size(&layout->keys[i], values[i]);
	}
	return size;
}

/*
 * GroupKeyWrite writes the flat form of a key (values detoasted) to dst,
 * which has GroupKeySize bytes.
 */
void
GroupKeyWrite(const ViewLayout *layout, const Datum *values, const bool *isnull,
			  char *dst)
{
	char	   *p = dst + KEY_HEADER_SIZE(layout->nkeys);

	memset(dst, 0, KEY_HEADER_SIZE(layout->nkeys));
	for (int i = 0; i < layout->nkeys; i++)
	{
		const KeySpec *key = &layout->keys[i];
		Size		size;

		dst[i] = isnull[i];
		if (isnull[i])
			continue;
		size = value_size(key, values[i]);
		if (key->typbyval)
			flat_store_byval(p, key->typlen, values[i]);
		else if (key->typlen > 0)
			memcpy(p, DatumGetPointer(values[i]), key->typlen);
		else
			memcpy(p, DatumGetPointer(values[i]), VARSIZE(DatumGetPointer(values[i])));
		p += size;
	}
}

/*
 * GroupKeyRead returns the values of a flat key; by-reference values point
 * into src.
 */
void
GroupKeyRead(const ViewLayout *layout, const char *src, Datum *values, bool *isnull)
{
	const char *p = src + KEY_HEADER_SIZE(layout->nkeys);

	for (int i = 0; i < layout->nkeys; i++)
	{
		const KeySpec *key = &layout->keys[i];

		isnull[i] = src[i] != 0;
		if (isnull[i])
		{
			values[i] = (Datum) 0;
			continue;
		}
		if (key->typbyval)
			values[i] = flat_fetch_byval(p, key->typlen);
		else
			values[i] = PointerGetDatum(p);
		p += value_size(key, values[i]);
	}
}

/* Compare two non-NULL values of key column i. */
static inline bool
values_equal(const GroupKeys *gk, int i, Datum a, Datum b)
{
	const KeySpec *key = &gk->layout->keys[i];

	if (key->bitwise && key->typbyval)
		return a == b;
	if (key->bitwise && key->typlen == -1)
	{
		Size		len = VARSIZE_ANY_EXHDR(DatumGetPointer(b));

		return VARSIZE_ANY_EXHDR(DatumGetPointer(a)) == len &&
			memcmp(VARDATA_ANY(DatumGetPointer(a)), VARDATA_ANY(DatumGetPointer(b)), len) == 0;
	}
	if (key->bitwise)
		return memcmp(DatumGetPointer(a), DatumGetPointer(b), key->typlen) == 0;
	return DatumGetBool(FunctionCall2Coll((FmgrInfo *) &gk->eq[i], key->collation, a, b));
}

/*
 * GroupKeyEqual compares the (detoasted) key values of two rows.
 */
bool
GroupKeyEqual(const GroupKeys *gk, const Datum *a, const bool *anull,
			  const Datum *b, const bool *bnull)
{
	for (int i = 0; i < gk->layout->nkeys; i++)
	{
		if (anull[i] != bnull[i])
			return false;
		if (!anull[i] && !values_equal(gk, i, a[i], b[i]))
			return false;
	}
	return true;
}

/*
 * GroupKeyMatches compares a flat key with the (detoasted) values of a row.
 */
bool
GroupKeyMatches(const GroupKeys *gk, const char *stored, const Datum *values,
				const bool *isnull)
{
	Datum		svalues[FLOWSTATE_MAX_KEYS];
	bool		snull[FLOWSTATE_MAX_KEYS];

	GroupKeyRead(gk->layout, stored, svalues, snull);
	return GroupKeyEqual(gk, svalues, snull, values, isnull);
}

/*
 * GroupKeyPartIndexable tells whether the groups of a layout can be found
 * by their keys but the window (GroupKeyPartHash): the layout has a window
 * and other keys, whose equality is all equality of the bytes.
 */
bool
GroupKeyPartIndexable(const ViewLayout *layout)
{
	bool		window = false;

	if (layout->nkeys < 2)
		return false;
	for (int i = 0; i < layout->nkeys; i++)
	{
		if (layout->keys[i].is_window)
			window = true;
		else if (!layout->keys[i].bitwise)
			return false;
	}
	return window;
}

/*
 * GroupKeyPartHash hashes the keys of a group but its window, of a layout
 * that GroupKeyPartIndexable accepts; the window's value is ignored.  Pure
 * computation: it cannot fail.
 */
uint32
GroupKeyPartHash(const ViewLayout *layout, const Datum *values, const bool *isnull)
{
	uint32		h = 0x9e3779b9;

	for (int i = 0; i < layout->nkeys; i++)
	{
		const KeySpec *key = &layout->keys[i];
		uint32		kh;

		Assert(key->bitwise || key->is_window);
		if (key->is_window)
			continue;
		if (isnull[i])
			kh = 0x5bd1e995;
		else if (key->typbyval)
			kh = hash_datum64(values[i]);
		else if (key->typlen == -1)
			kh = hash_bytes((unsigned char *) VARDATA_ANY(DatumGetPointer(values[i])),
							VARSIZE_ANY_EXHDR(DatumGetPointer(values[i])));
		else
			kh = hash_bytes((unsigned char *) DatumGetPointer(values[i]), key->typlen);
		h = hash_combine(h, kh);
	}
	return h;
}
