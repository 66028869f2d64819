/*-------------------------------------------------------------------------
 *
 * state_format.c
 *	  The serialized state of a group, kept in state tables and returned by
 *	  flowstate.partial_states (AggSerialize, AggDecode, AggDeserialize),
 *	  the layout fingerprint it carries (AggLayoutFingerprint), and the
 *	  memory image of blocks that releases up to 0.4.0 wrote and temporary
 *	  files still use (AggSerializeImage, AggDecodeImage).
 *
 * Serialized state, format 2 (0.5.0 on).  A group's state is written field
 * by field, as PostgreSQL's pqformat writes a message: integers in network
 * byte order, no padding, nothing of the block's memory image.
 *
 *	format		1 byte	2
 *	fingerprint	uint32	AggLayoutFingerprint of the view's layout
 *	nrows		int64	rows in the group
 *	per aggregate, in the layout's order, its fields (aggregate_state.h):
 *	  count					n int64
 *	  sum/avg of integers	n int64, sum int128 (high int64, low uint64)
 *	  sum/avg of floats		n int64, sum float8, specials
 *	  variance of floats	n, sx, sxx, dn, dsx, dsxx float8, specials
 *	  variance of int2/4	n int64, sx int128, sxx int128
 *	  numeric sum/avg/var	n int64, sx var, sxx var (variance only),
 *							specials, scale int32, del_scale int32,
 *							scale_count int64, del_scale_count int64
 *	  min/max				nn int64, flags int32, val, delval: by value in
 *							the type's length (1, 2, 4 or 8 bytes), else as a var
 *	  bool_and/bool_or		ntrue int64, nfalse int64
 *	  generic (generic.c)	ndeleted int64, flags int32, the transition
 *							state as a min/max value is written: by value
 *							in its type's length, else a var (an internal
 *							state: its serialization function's bytes)
 *	crc			uint32	CRC-32C of every byte before it
 *
 * float8 is its IEEE 754 bits as an int64 (pq_sendfloat8); specials are
 * the nan, pinf and ninf counts, int64 each; a var is an int32 length (-1:
 * none) then the data of the varlena without its header: a numeric's
 * digits, a by-reference min/max value (a fixed-length one after its 4
 * bytes of padding), in the type's internal form, as in a data file.  The
 * fingerprint hashes what decides this encoding (the keys' types, typmods
 * and collations, each aggregate's kind, variant, argument and result
 * types and collation), so that a state written for another layout is
 * refused rather than misread; types and collations defined in the
 * database count by their storage only, so that a dump and restore, which
 * gives them new OIDs, keeps the fingerprint.  AggDecode checks the format,
 * the checksum, the fingerprint and every length, and reads nothing it
 * cannot check.
 *
 * Format 1, up to 0.4.0, was the block's memory image (padding, host byte
 * order) followed by the var fields; AggDecode still reads it, by size,
 * for the update to 0.5.0 converts it (flowstate.convert_states) and a
 * server runs the new library before the update.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "nodes/execnodes.h"
#include "port/pg_crc32c.h"

#include "aggregates/aggregate_state.h"

/*
 * The serialized state of a group (see the file header): format 2, written
 * field by field in network byte order.
 */
#define STATE_FORMAT_IMAGE	1	/* the block's memory image, up to 0.4.0 */
#define STATE_FORMAT		2
#define STATE_HEADER_SIZE	(1 + 4)	/* format, layout fingerprint */
#define STATE_TRAILER_SIZE	4	/* CRC-32C of all that precedes */

/* Mix a value into a fingerprint. */
static uint32
mix(uint32 h, uint32 v)
{
	return hash_combine(h, murmurhash32(v));
}

/*
 * Mix an object of PostgreSQL's own catalog (a type, a collation) by its
 * OID, the same on every server of a major version; one defined in the
 * database (an enum, a domain, an ICU collation) by kind only, since its
 * OID changes with a dump and restore and its name with a rename.
 */
static uint32
mix_object(uint32 h, Oid oid)
{
	return mix(h, oid < FirstNormalObjectId ? (uint32) oid : (uint32) FirstNormalObjectId);
}

/*
 * AggLayoutFingerprint hashes what decides the encoding of a view's state:
 * the format, the keys (type, typmod, collation, window) and each
 * aggregate (kind, variant, argument and result types, collation of
 * comparisons, how its min/max values are stored).
 */
uint32
AggLayoutFingerprint(const ViewLayout *layout)
{
	uint32		h = murmurhash32(STATE_FORMAT);

	h = mix(h, (uint32) layout->nkeys);
	h = mix(h, (uint32) layout->naggs);
	h = mix(h, (uint32) layout->scalar);
	for (int i = 0; i < layout->nkeys; i++)
	{
		const KeySpec *k = &layout->keys[i];

		h = mix_object(h, k->type);
		h = mix(h, (uint32) k->typmod);
		h = mix_object(h, k->collation);
		h = mix(h, (uint32) k->typlen);
		h = mix(h, (uint32) k->typbyval);
		h = mix(h, (uint32) k->is_window);
	}
	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *a = &layout->aggs[i];

		h = mix(h, (uint32) a->kind);
		h = mix(h, (uint32) a->variant);
		h = mix_object(h, a->argtype);
		h = mix_object(h, a->restype);
		h = mix(h, (uint32) a->restypmod);
		h = mix_object(h, a->inputcollid);
		h = mix(h, (uint32) a->vallen);
		h = mix(h, (uint32) a->valbyval);
		if (a->kind == AGG_GENERIC)
		{
			h = mix_object(h, a->aggfnoid);
			h = mix(h, (uint32) a->nargs);
			for (int j = 0; j < a->nargs; j++)
				h = mix_object(h, a->argtypes[j]);
		}
	}
	return h;
}

static void
put_int128(StringInfo buf, int128 v)
{
	pq_sendint64(buf, (int64) (v >> 64));
	pq_sendint64(buf, (int64) (uint64) v);
}

static void
put_specials(StringInfo buf, const Specials *sp)
{
	pq_sendint64(buf, sp->nan);
	pq_sendint64(buf, sp->pinf);
	pq_sendint64(buf, sp->ninf);
}

/* A var field: the length of its value's data (-1: none), then the data. */
static void
put_var(StringInfo buf, Datum d)
{
	if (d == (Datum) 0)
	{
		pq_sendint32(buf, -1);
		return;
	}
	pq_sendint32(buf, (int32) VARSIZE_ANY_EXHDR(DatumGetPointer(d)));
	pq_sendbytes(buf, VARDATA_ANY(DatumGetPointer(d)), VARSIZE_ANY_EXHDR(DatumGetPointer(d)));
}

/* A min/max value: by value, in its type's length; else as a var field. */
static void
put_minmax(StringInfo buf, const AggSpec *spec, Datum d)
{
	if (!spec->valbyval)
		put_var(buf, d);
	else if (spec->vallen == 8)
		pq_sendint64(buf, DatumGetInt64(d));
	else if (spec->vallen == 4)
		pq_sendint32(buf, DatumGetInt32(d));
	else if (spec->vallen == 2)
		pq_sendint16(buf, DatumGetInt16(d));
	else
		pq_sendbyte(buf, DatumGetUInt8(d));
}

/* Append the fields of one aggregate. */
static void
put_fields(StringInfo buf, const AggSpec *spec, const char *block)
{
	switch ((AggKind) spec->kind)
	{
		case AGG_COUNT:
			pq_sendint64(buf, FIELDS(CountFields, block, spec)->n);
			return;

		case AGG_SUM_INT:
		case AGG_SUM_INT8:
		case AGG_AVG_INT:
			{
				IntSumFields *f = FIELDS(IntSumFields, block, spec);

				pq_sendint64(buf, f->n);
				put_int128(buf, f->s);
				return;
			}

		case AGG_SUM_FLOAT:
		case AGG_AVG_FLOAT:
			{
				FloatSumFields *f = FIELDS(FloatSumFields, block, spec);

				pq_sendint64(buf, f->n);
				pq_sendfloat8(buf, f->s);
				put_specials(buf, &f->sp);
				return;
			}

		case AGG_VAR_FLOAT:
			{
				FloatVarFields *f = FIELDS(FloatVarFields, block, spec);

				pq_sendfloat8(buf, f->n);
				pq_sendfloat8(buf, f->sx);
				pq_sendfloat8(buf, f->sxx);
				pq_sendfloat8(buf, f->dn);
				pq_sendfloat8(buf, f->dsx);
				pq_sendfloat8(buf, f->dsxx);
				put_specials(buf, &f->sp);
				return;
			}

		case AGG_VAR_INT:
			{
				IntVarFields *f = FIELDS(IntVarFields, block, spec);

				pq_sendint64(buf, f->n);
				put_int128(buf, f->sx);
				put_int128(buf, f->sxx);
				return;
			}

		case AGG_SUM_NUMERIC:
		case AGG_AVG_NUMERIC:
		case AGG_VAR_NUMERIC:
			{
				NumericFields *f = FIELDS(NumericFields, block, spec);

				pq_sendint64(buf, f->n);
				put_var(buf, f->sx);
				if (spec->kind == AGG_VAR_NUMERIC)
					put_var(buf, f->sxx);
				put_specials(buf, &f->sp);
				pq_sendint32(buf, f->scale);
				pq_sendint32(buf, f->del_scale);
				pq_sendint64(buf, f->scale_count);
				pq_sendint64(buf, f->del_scale_count);
				return;
			}

		case AGG_MIN:
		case AGG_MAX:
			{
				MinMaxFields *f = FIELDS(MinMaxFields, block, spec);

				pq_sendint64(buf, f->nn);
				pq_sendint32(buf, f->flags);
				put_minmax(buf, spec, f->val);
				put_minmax(buf, spec, f->delval);
				return;
			}

		case AGG_BOOL_AND:
		case AGG_BOOL_OR:
			{
				BoolFields *f = FIELDS(BoolFields, block, spec);

				pq_sendint64(buf, f->ntrue);
				pq_sendint64(buf, f->nfalse);
				return;
			}

		case AGG_GENERIC:
			{
				const GenericFields *f = FIELDS(GenericFields, block, spec);

				pq_sendint64(buf, f->ndeleted);
				pq_sendint32(buf, f->flags);
				put_minmax(buf, spec, f->state);
				return;
			}
	}
	elog(ERROR, "unknown flowstate aggregate kind %d", spec->kind);
}

static bytea *
to_bytea(StringInfo buf)
{
	bytea	   *result = palloc(VARHDRSZ + buf->len);

	SET_VARSIZE(result, VARHDRSZ + buf->len);
	memcpy(VARDATA(result), buf->data, buf->len);
	pfree(buf->data);
	return result;
}

/*
 * AggSerialize turns a block into the bytea kept in a state table, in
 * format 2 (see the file header).
 */
bytea *
AggSerialize(const ViewLayout *layout, const char *block)
{
	StringInfoData buf;
	pg_crc32c	crc;

	initStringInfo(&buf);
	pq_sendbyte(&buf, STATE_FORMAT);
	pq_sendint32(&buf, AggLayoutFingerprint(layout));
	pq_sendint64(&buf, BLOCK_NROWS(block));
	for (int i = 0; i < layout->naggs; i++)
		put_fields(&buf, &layout->aggs[i], block);
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf.data, buf.len);
	FIN_CRC32C(crc);
	pq_sendint32(&buf, crc);
	return to_bytea(&buf);
}

/*
 * AggSerializeImage turns a block into the format of releases up to 0.4.0:
 * a format byte, the block with its var fields zeroed, then each var field
 * as a length (-1 when absent) and its bytes, in this server's byte order.
 * State tables are written so until the extension is updated to 0.5.0,
 * whose update converts them (flowstate.convert_states).
 */
bytea *
AggSerializeImage(const ViewLayout *layout, const char *block)
{
	StringInfoData buf;
	char	   *copy = palloc(layout->block_size);

	memcpy(copy, block, layout->block_size);
	for (int i = 0; i < layout->nvars; i++)
		*(Datum *) (copy + layout->var_offsets[i]) = (Datum) 0;

	initStringInfo(&buf);
	appendStringInfoCharMacro(&buf, STATE_FORMAT_IMAGE);
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
	return to_bytea(&buf);
}

/* Reading a state: a cursor that notes the first problem and reads zeros after it. */
typedef struct StateReader
{
	const unsigned char *p;
	const unsigned char *end;
	const char *problem;
} StateReader;

static const unsigned char *
take(StateReader *r, int n)
{
	const unsigned char *at = r->p;

	if (r->problem)
		return NULL;
	if (n < 0 || r->end - r->p < n)
	{
		r->problem = "it is shorter than its fields";
		return NULL;
	}
	r->p += n;
	return at;
}

static uint64
get_uint64(StateReader *r)
{
	const unsigned char *at = take(r, 8);
	uint64		v;

	if (at == NULL)
		return 0;
	memcpy(&v, at, 8);
	return pg_ntoh64(v);
}

static uint32
get_uint32(StateReader *r)
{
	const unsigned char *at = take(r, 4);
	uint32		v;

	if (at == NULL)
		return 0;
	memcpy(&v, at, 4);
	return pg_ntoh32(v);
}

static uint16
get_uint16(StateReader *r)
{
	const unsigned char *at = take(r, 2);
	uint16		v;

	if (at == NULL)
		return 0;
	memcpy(&v, at, 2);
	return pg_ntoh16(v);
}

/* A count: never negative. */
static int64
get_count(StateReader *r)
{
	int64		v = (int64) get_uint64(r);

	if (v < 0 && r->problem == NULL)
		r->problem = "it holds a negative count";
	return v < 0 ? 0 : v;
}

static double
get_float8(StateReader *r)
{
	union
	{
		uint64		i;
		double		d;
	}			u;

	u.i = get_uint64(r);
	return u.d;
}

static int128
get_int128(StateReader *r)
{
	uint64		hi = get_uint64(r);
	uint64		lo = get_uint64(r);

	return (int128) (((uint128) hi << 64) | lo);
}

static void
get_specials(StateReader *r, Specials *sp)
{
	sp->nan = get_count(r);
	sp->pinf = get_count(r);
	sp->ninf = get_count(r);
}

/* A var field, palloc'd; wrapped_len > 0: the length its data must have. */
static Datum
get_var(StateReader *r, int wrapped_len)
{
	int32		len = (int32) get_uint32(r);
	const unsigned char *data;
	char	   *val;

	if (len == -1 || r->problem)
		return (Datum) 0;
	if (len < 0 || (wrapped_len > 0 && len != wrapped_len))
	{
		r->problem = "a value has a length its type cannot have";
		return (Datum) 0;
	}
	data = take(r, len);
	if (data == NULL)
		return (Datum) 0;
	val = palloc(VARHDRSZ + len);
	SET_VARSIZE(val, VARHDRSZ + len);
	memcpy(VARDATA(val), data, len);
	return PointerGetDatum(val);
}

static Datum
get_minmax(StateReader *r, const AggSpec *spec)
{
	if (!spec->valbyval)
		return get_var(r, spec->vallen > 0 ? MM_WRAP_HEADER - VARHDRSZ + spec->vallen : 0);
	if (spec->vallen == 8)
		return Int64GetDatum((int64) get_uint64(r));
	if (spec->vallen == 4)
		return Int32GetDatum((int32) get_uint32(r));
	if (spec->vallen == 2)
		return Int16GetDatum((int16) get_uint16(r));
	{
		const unsigned char *at = take(r, 1);

		return UInt8GetDatum(at ? *at : 0);
	}
}

/* Read the fields of one aggregate into block. */
static void
get_fields(StateReader *r, const AggSpec *spec, char *block)
{
	switch ((AggKind) spec->kind)
	{
		case AGG_COUNT:
			FIELDS(CountFields, block, spec)->n = get_count(r);
			return;

		case AGG_SUM_INT:
		case AGG_SUM_INT8:
		case AGG_AVG_INT:
			{
				IntSumFields *f = FIELDS(IntSumFields, block, spec);

				f->n = get_count(r);
				f->s = get_int128(r);
				return;
			}

		case AGG_SUM_FLOAT:
		case AGG_AVG_FLOAT:
			{
				FloatSumFields *f = FIELDS(FloatSumFields, block, spec);

				f->n = get_count(r);
				f->s = get_float8(r);
				get_specials(r, &f->sp);
				return;
			}

		case AGG_VAR_FLOAT:
			{
				FloatVarFields *f = FIELDS(FloatVarFields, block, spec);

				f->n = get_float8(r);
				f->sx = get_float8(r);
				f->sxx = get_float8(r);
				f->dn = get_float8(r);
				f->dsx = get_float8(r);
				f->dsxx = get_float8(r);
				get_specials(r, &f->sp);
				return;
			}

		case AGG_VAR_INT:
			{
				IntVarFields *f = FIELDS(IntVarFields, block, spec);

				f->n = get_count(r);
				f->sx = get_int128(r);
				f->sxx = get_int128(r);
				return;
			}

		case AGG_SUM_NUMERIC:
		case AGG_AVG_NUMERIC:
		case AGG_VAR_NUMERIC:
			{
				NumericFields *f = FIELDS(NumericFields, block, spec);

				f->n = get_count(r);
				f->sx = get_var(r, 0);
				if (spec->kind == AGG_VAR_NUMERIC)
					f->sxx = get_var(r, 0);
				get_specials(r, &f->sp);
				f->scale = (int32) get_uint32(r);
				f->del_scale = (int32) get_uint32(r);
				f->scale_count = get_count(r);
				f->del_scale_count = get_count(r);
				return;
			}

		case AGG_MIN:
		case AGG_MAX:
			{
				MinMaxFields *f = FIELDS(MinMaxFields, block, spec);

				f->nn = get_count(r);
				f->flags = (int32) get_uint32(r);
				if ((f->flags & ~(MM_HAS_VAL | MM_HAS_DEL)) != 0 && r->problem == NULL)
					r->problem = "it holds unknown flags";
				f->val = get_minmax(r, spec);
				f->delval = get_minmax(r, spec);
				return;
			}

		case AGG_BOOL_AND:
		case AGG_BOOL_OR:
			{
				BoolFields *f = FIELDS(BoolFields, block, spec);

				f->ntrue = get_count(r);
				f->nfalse = get_count(r);
				return;
			}

		case AGG_GENERIC:
			{
				GenericFields *f = FIELDS(GenericFields, block, spec);

				f->ndeleted = get_count(r);
				f->flags = (int32) get_uint32(r);
				if ((f->flags & ~(GEN_HAS_STATE | GEN_FAILED)) != 0 && r->problem == NULL)
					r->problem = "it holds unknown flags";
				f->state = get_minmax(r, spec);
				return;
			}
	}
	r->problem = "its layout has an unknown aggregate";
}

/* Read a state of format 1 (the memory image of releases up to 0.4.0). */
static const char *
decode_image(const ViewLayout *layout, const char *p, const char *end, char *block)
{
	if (end - p < layout->block_size)
		return psprintf("it has %d bytes, fewer than the %d of its layout",
						(int) (end - p), layout->block_size);
	memcpy(block, p, layout->block_size);
	p += layout->block_size;
	for (int i = 0; i < layout->nvars; i++)
		*(Datum *) (block + layout->var_offsets[i]) = (Datum) 0;
	for (int i = 0; i < layout->nvars; i++)
	{
		int32		len;
		char	   *val = NULL;

		if (end - p < (long) sizeof(len))
			return "it is shorter than its fields";
		memcpy(&len, p, sizeof(len));
		p += sizeof(len);
		if (len > 0)
		{
			if (end - p < len)
				return "it is shorter than its fields";
			val = palloc(len);
			memcpy(val, p, len);
			p += len;
		}
		*(Datum *) (block + layout->var_offsets[i]) = PointerGetDatum(val);
	}
	if (p != end)
		return psprintf("it has %d bytes more than its fields", (int) (end - p));
	return NULL;
}

/*
 * AggDecodeImage reads back a block written by AggSerializeImage (its
 * format byte first), a delta as well as a state, its var fields palloc'd
 * in CurrentMemoryContext; unlike AggDecode it checks nothing a delta may
 * hold.  For blocks this server wrote and reads itself (temporary files).
 */
const char *
AggDecodeImage(const ViewLayout *layout, const char *data, Size len, char *block)
{
	if (len < 1 || data[0] != STATE_FORMAT_IMAGE)
		return "it is not a block image";
	return decode_image(layout, data + 1, data + len, block);
}

/*
 * What a state of a group's rows never holds, which a block in shared
 * memory cannot keep (shared_block.c): a min or max without its value
 * while the group has inputs, or with a deleted value.
 */
static const char *
check_block(const ViewLayout *layout, const char *block)
{
	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *spec = &layout->aggs[i];
		const MinMaxFields *f;

		if (spec->kind != AGG_MIN && spec->kind != AGG_MAX)
			continue;
		f = FIELDS(MinMaxFields, block, spec);
		if ((f->flags & MM_HAS_DEL) || (f->nn > 0) != ((f->flags & MM_HAS_VAL) != 0) ||
			(f->nn > 0 && !spec->valbyval && f->val == (Datum) 0))
			return "its minimum or maximum does not match its count of inputs";
	}
	return NULL;
}

/*
 * AggDecode reads a state written by AggSerialize (or, from before 0.5.0,
 * by AggSerializeImage) into a block in the local form, its var fields
 * palloc'd in CurrentMemoryContext.  Returns NULL, or why the state cannot
 * be read: its format, checksum, layout fingerprint or lengths do not
 * match.  A state that cannot be read leaves the block zeroed.
 */
const char *
AggDecode(const ViewLayout *layout, const bytea *state, char *block, int *format)
{
	const char *p = VARDATA_ANY(state);
	int			len = VARSIZE_ANY_EXHDR(state);
	StateReader r;
	pg_crc32c	crc;
	pg_crc32c	stored;
	uint32		fingerprint;
	uint32		expected;

	memset(block, 0, layout->block_size);
	*format = len > 0 ? (unsigned char) p[0] : 0;
	if (len > 0 && p[0] == STATE_FORMAT_IMAGE)
	{
		const char *problem = decode_image(layout, p + 1, p + len, block);

		if (problem == NULL)
			problem = check_block(layout, block);
		if (problem)
			memset(block, 0, layout->block_size);
		return problem;
	}
	if (len < STATE_HEADER_SIZE + STATE_TRAILER_SIZE)
		return psprintf("it has %d bytes, too few for a state", len);
	if (p[0] != STATE_FORMAT)
		return psprintf("its format %d is unknown", (unsigned char) p[0]);

	memcpy(&stored, p + len - STATE_TRAILER_SIZE, 4);
	stored = pg_ntoh32(stored);
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, p, len - STATE_TRAILER_SIZE);
	FIN_CRC32C(crc);
	if (crc != stored)
		return "its checksum does not match its bytes";

	r.p = (const unsigned char *) p + 1;
	r.end = (const unsigned char *) p + len - STATE_TRAILER_SIZE;
	r.problem = NULL;
	fingerprint = get_uint32(&r);
	expected = AggLayoutFingerprint(layout);
	if (fingerprint != expected)
		return psprintf("it was written for another layout (fingerprint %08x, the view's is %08x)",
						fingerprint, expected);
	BLOCK_NROWS(block) = get_count(&r);
	for (int i = 0; i < layout->naggs && r.problem == NULL; i++)
		get_fields(&r, &layout->aggs[i], block);
	if (r.problem == NULL && r.p != r.end)
		r.problem = psprintf("it has %d bytes more than its fields", (int) (r.end - r.p));
	if (r.problem == NULL)
		r.problem = check_block(layout, block);
	if (r.problem)
		memset(block, 0, layout->block_size);
	return r.problem;
}

/*
 * AggDeserialize reads a state as AggDecode does, and raises an error if
 * it cannot be read.
 */
void
AggDeserialize(const ViewLayout *layout, const bytea *state, char *block)
{
	int			format;
	const char *problem = AggDecode(layout, state, block, &format);

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("state of a continuous view cannot be read: %s", problem),
				 errhint("Drop the continuous view with flowstate.drop_view() and create it again.")));
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
