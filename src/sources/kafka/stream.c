/*-------------------------------------------------------------------------
 *
 * stream.c
 *	  Kafka streams as foreign tables: their options, and the decoding of
 *	  their messages into rows of the foreign table.
 *
 * A stream is a foreign table of the flowstate_kafka wrapper:
 *
 *	CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka
 *		OPTIONS (brokers 'host:9092', <librdkafka property> '…');
 *	CREATE USER MAPPING FOR app SERVER kafka
 *		OPTIONS ("sasl.username" '…', "sasl.password" '…');
 *	CREATE FOREIGN TABLE clicks (
 *		ts      timestamptz OPTIONS (field 'time') NOT NULL,
 *		user_id bigint,
 *		url     text,
 *		at      timestamptz OPTIONS (metadata 'timestamp'))
 *	  SERVER kafka OPTIONS (topic 'clicks', format 'json');
 *
 * Each column takes a field of the message (JSON: the key named by its
 * "field" option, by default its own name; CSV: the field at position
 * "field", by default its rank among the payload columns) or one of the
 * message's metadata ("metadata": timestamp, partition, offset, key,
 * topic).  A field that is missing or null gives NULL, which a NOT NULL
 * column refuses; a value that does not convert to the column's type
 * refuses the message.  A refused message is a dead letter (the caller
 * records it), never an error of the worker.
 *
 * Values are converted without the type's input function for the common
 * types (integers, floats, booleans, text, ISO 8601 timestamps with an
 * offset, epoch seconds as timestamptz); the input function does the rest.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/reloptions.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "sources/kafka/json.h"
#include "fs_catalog/security.h"
#include "query/query.h"
#include "sources/kafka/stream.h"


const char *const StreamTableOptions[] = {"topic", "format", "delimiter", "start", "workers",
"group_id", "idle_timeout", NULL};
const char *const StreamColumnOptions[] = {"field", "metadata", NULL};

static const char *const metadata_names[] = {
	[SOURCE_TIMESTAMP] = "timestamp",
	[SOURCE_PARTITION] = "partition",
	[SOURCE_OFFSET] = "offset",
	[SOURCE_KEY] = "key",
	[SOURCE_TOPIC] = "topic",
};

/* The options of the user mapping of user for server, or of PUBLIC's. */
static List *
user_mapping_options(Oid user, Oid serverid)
{
	Oid			users[2] = {user, InvalidOid};

	for (int i = 0; i < 2; i++)
	{
		HeapTuple	tuple = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(users[i]),
											ObjectIdGetDatum(serverid));
		List	   *options = NIL;
		Datum		datum;
		bool		isnull;

		if (!HeapTupleIsValid(tuple))
			continue;
		datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tuple, Anum_pg_user_mapping_umoptions,
								&isnull);
		if (!isnull)
			options = untransformRelOptions(datum);
		ReleaseSysCache(tuple);
		return options;
	}
	return NIL;
}

static StreamSource
metadata_source(const char *value)
{
	for (int i = SOURCE_TIMESTAMP; i <= SOURCE_TOPIC; i++)
		if (strcmp(value, metadata_names[i]) == 0)
			return (StreamSource) i;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid metadata \"%s\"", value),
			 errhint("Use timestamp, partition, offset, key or topic.")));
	return SOURCE_FIELD;		/* keep the compiler quiet */
}

/* Whether a column's type suits a metadata source. */
static bool
metadata_type_ok(StreamSource source, Oid type)
{
	switch (source)
	{
		case SOURCE_TIMESTAMP:
			return type == TIMESTAMPTZOID;
		case SOURCE_PARTITION:
			return type == INT4OID || type == INT8OID;
		case SOURCE_OFFSET:
			return type == INT8OID;
		case SOURCE_KEY:
		case SOURCE_TOPIC:
			return type == TEXTOID || type == VARCHAROID || type == BYTEAOID;
		default:
			return true;
	}
}

static int
positive_int(DefElem *def, int max)
{
	char	   *value = defGetString(def);
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || *value == '\0' || *end != '\0' || n < 1 || n > max)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid %s \"%s\"", def->defname, value),
				 errhint("Give a whole number from 1 to %d.", max)));
	return (int) n;
}

/*
 * The idle_timeout of a stream, in microseconds: an interval, positive,
 * without months.
 */
static int64
idle_timeout(DefElem *def)
{
	const char *value = defGetString(def);
	MemoryContext cxt = CurrentMemoryContext;
	Interval   *iv = NULL;
	int64		us = 0;

	/* interval_in only parses (no resource to release): its error is ours */
	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(value),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
	}
	PG_END_TRY();
	if (iv != NULL && iv->month == 0)
		us = iv->day * USECS_PER_DAY + iv->time;
	if (us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid idle_timeout \"%s\"", value),
				 errhint("Give a positive interval without months, such as '30 seconds'.")));
	return us;
}

/*
 * StreamCheckTableOption refuses a bad option of a stream's foreign table.
 */
void
StreamCheckTableOption(DefElem *def)
{
	const char *value = defGetString(def);

	if (strcmp(def->defname, "topic") == 0)
	{
		if (*value == '\0' || strlen(value) > 249)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid topic \"%s\"", value),
					 errhint("A Kafka topic name has 1 to 249 characters.")));
	}
	else if (strcmp(def->defname, "format") == 0)
	{
		if (strcmp(value, "json") != 0 && strcmp(value, "csv") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid format \"%s\"", value),
					 errhint("Use json or csv.")));
	}
	else if (strcmp(def->defname, "delimiter") == 0)
	{
		if (strlen(value) != 1 || *value == '"' || *value == '\n' || *value == '\r')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid delimiter \"%s\"", value),
					 errhint("Give one character other than a quote or a line break, such as ',' or ';'.")));
	}
	else if (strcmp(def->defname, "start") == 0)
	{
		if (strcmp(value, "earliest") != 0 && strcmp(value, "latest") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid start \"%s\"", value),
					 errhint("Use earliest (the oldest message the topic keeps) or latest (messages produced from now on).")));
	}
	else if (strcmp(def->defname, "workers") == 0)
		(void) positive_int(def, 64);
	else if (strcmp(def->defname, "idle_timeout") == 0)
		(void) idle_timeout(def);
	else if (strcmp(def->defname, "group_id") == 0)
	{
		if (*value == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("group_id must not be empty"),
					 errhint("Give the consumer group the offsets are reported to, or leave the option out.")));
	}
}

/*
 * StreamCheckColumnOption refuses a bad option of a stream's column.
 */
void
StreamCheckColumnOption(DefElem *def)
{
	const char *value = defGetString(def);

	if (strcmp(def->defname, "metadata") == 0)
		(void) metadata_source(value);
	else if (strcmp(def->defname, "field") == 0 && *value == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("field must not be empty"),
				 errhint("Give the JSON key, or the CSV field number, the column takes its value from.")));
}

static StreamConversion
conversion_of(Oid type)
{
	switch (type)
	{
		case INT2OID:
			return CONV_INT2;
		case INT4OID:
			return CONV_INT4;
		case INT8OID:
			return CONV_INT8;
		case FLOAT4OID:
			return CONV_FLOAT4;
		case FLOAT8OID:
			return CONV_FLOAT8;
		case BOOLOID:
			return CONV_BOOL;
		case TEXTOID:
			return CONV_TEXT;
		case TIMESTAMPTZOID:
			return CONV_TIMESTAMPTZ;
		default:
			return CONV_INPUT;
	}
}

/*
 * StreamLoad reads a stream's definition: its foreign table, server and
 * user mapping (the table owner's, else PUBLIC's), and its columns.  Runs
 * in a transaction; everything lives in cxt.
 */
StreamDef *
StreamLoad(Oid relid, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	StreamDef  *def = palloc0(sizeof(StreamDef));
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	Relation	rel = relation_open(relid, AccessShareLock);
	ListCell   *lc;
	int			rank = 0;
	char	   *brokers = NULL;

	def->relid = relid;
	def->name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										   RelationGetRelationName(rel));
	def->format = FORMAT_JSON;
	def->delimiter = ',';
	def->workers = 1;
	def->idle_timeout_us = -1;
	def->group_id = "flowstate";
	foreach(lc, table->options)
	{
		DefElem    *opt = lfirst(lc);
		const char *value = defGetString(opt);

		if (strcmp(opt->defname, "topic") == 0)
			def->topic = pstrdup(value);
		else if (strcmp(opt->defname, "format") == 0)
			def->format = strcmp(value, "csv") == 0 ? FORMAT_CSV : FORMAT_JSON;
		else if (strcmp(opt->defname, "delimiter") == 0)
			def->delimiter = value[0];
		else if (strcmp(opt->defname, "start") == 0)
			def->start_latest = strcmp(value, "latest") == 0;
		else if (strcmp(opt->defname, "workers") == 0)
			def->workers = positive_int(opt, 64);
		else if (strcmp(opt->defname, "idle_timeout") == 0)
			def->idle_timeout_us = idle_timeout(opt);
		else if (strcmp(opt->defname, "group_id") == 0)
			def->group_id = pstrdup(value);
	}
	if (def->topic == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table %s has no topic", def->name),
				 errhint("Run ALTER FOREIGN TABLE %s OPTIONS (ADD topic 'name').", def->name)));

	foreach(lc, server->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "brokers") == 0)
			brokers = pstrdup(defGetString(opt));
		else
			def->properties = lappend(def->properties, copyObject(opt));
	}
	if (brokers == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server %s has no brokers", quote_identifier(server->servername)),
				 errhint("Run ALTER SERVER %s OPTIONS (ADD brokers 'host:port,...').",
						 quote_identifier(server->servername))));
	def->properties = lcons(makeDefElem("bootstrap.servers", (Node *) makeString(brokers), -1),
							def->properties);
	def->owner = rel->rd_rel->relowner;
	foreach(lc, user_mapping_options(rel->rd_rel->relowner, server->serverid))
		def->properties = lappend(def->properties, copyObject(lfirst(lc)));

	def->desc = CreateTupleDescCopy(RelationGetDescr(rel));
	def->columns = palloc0(sizeof(StreamColumn) * Max(def->desc->natts, 1));
	for (int i = 0; i < def->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(def->desc, i);
		StreamColumn *col = &def->columns[def->ncolumns];
		char	   *field = NULL;
		Oid			input;

		if (att->attisdropped)
			continue;
		col->attnum = att->attnum;
		col->name = pstrdup(NameStr(att->attname));
		/* the copy of the descriptor drops NOT NULL: the relation's has it */
		col->notnull = TupleDescAttr(RelationGetDescr(rel), i)->attnotnull;
		col->type = att->atttypid;
		col->typmod = att->atttypmod;
		col->source = SOURCE_FIELD;
		/* a domain's CHECK, a user-defined type's input: code of the owner's choice */
		if (att->atttypid >= FirstNormalObjectId)
			def->user_types = true;
		foreach(lc, GetForeignColumnOptions(relid, att->attnum))
		{
			DefElem    *opt = lfirst(lc);

			if (strcmp(opt->defname, "metadata") == 0)
				col->source = metadata_source(defGetString(opt));
			else if (strcmp(opt->defname, "field") == 0)
				field = pstrdup(defGetString(opt));
		}
		if (col->source != SOURCE_FIELD && !metadata_type_ok(col->source, col->type))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of %s cannot hold the message's %s",
							col->name, def->name, metadata_names[col->source]),
					 errhint("The timestamp is a timestamptz, the partition an integer or bigint, the offset a bigint, the key and topic text, varchar or bytea.")));
		if (col->source == SOURCE_FIELD)
		{
			rank++;
			col->field = field ? field : col->name;
			col->fieldlen = strlen(col->field);
			col->position = rank;
			if (def->format == FORMAT_CSV && field != NULL)
			{
				char	   *end;
				long		n = strtol(field, &end, 10);

				if (*end != '\0' || n < 1 || n > 10000)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("field \"%s\" of column \"%s\" is not a CSV field number",
									field, col->name),
							 errhint("For format csv, give the 1-based position of the field.")));
				col->position = (int) n;
			}
		}
		/* a type modifier (varchar(n), numeric(p,s)...) is the input function's */
		col->conv = col->typmod >= 0 ? CONV_INPUT : conversion_of(col->type);
		getTypeInputInfo(col->type, &input, &col->ioparam);
		fmgr_info_cxt(input, &col->input, cxt);
		def->ncolumns++;
	}
	relation_close(rel, AccessShareLock);

	def->bufsize = 1024;
	def->buf = palloc(def->bufsize + JSON_PADDING);
	def->texts = palloc0(sizeof(char *) * Max(def->ncolumns, 1));
	def->lens = palloc0(sizeof(size_t) * Max(def->ncolumns, 1));
	def->kinds = palloc0(sizeof(int) * Max(def->ncolumns, 1));
	MemoryContextSwitchTo(oldcxt);
	return def;
}

/* ---- conversions ---- */

/* A decoding failure: the message is refused with this reason. */
static void
refuse_code(int code, const char *fmt,...) pg_attribute_printf(2, 3);

static void
refuse_code(int code, const char *fmt,...)
{
	char		buf[512];
	va_list		args;

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	ereport(ERROR,
			(errcode(code),
			 errmsg_internal("%s", buf)));
}

#define refuse(...) refuse_code(ERRCODE_INVALID_TEXT_REPRESENTATION, __VA_ARGS__)
#define refuse_range(...) refuse_code(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, __VA_ARGS__)
#define refuse_null(...) refuse_code(ERRCODE_NOT_NULL_VIOLATION, __VA_ARGS__)

static int64
to_int(const StreamColumn *col, const char *s, size_t len, int64 min, int64 max)
{
	size_t		i = 0;
	bool		neg = false;
	uint64		v = 0;

	while (i < len && isspace((unsigned char) s[i]))
		i++;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i == len || !isdigit((unsigned char) s[i]))
		refuse("invalid value \"%.*s\" for integer column \"%s\"", (int) Min(len, 64), s, col->name);
	for (; i < len && isdigit((unsigned char) s[i]); i++)
	{
		v = v * 10 + (s[i] - '0');
		if (v > (uint64) PG_INT64_MAX + 1)
			refuse_range("value \"%.*s\" is out of range for column \"%s\"", (int) Min(len, 64), s, col->name);
	}
	while (i < len && isspace((unsigned char) s[i]))
		i++;
	if (i != len)
		refuse("invalid value \"%.*s\" for integer column \"%s\"", (int) Min(len, 64), s, col->name);
	if ((neg && v > (uint64) -min) || (!neg && v > (uint64) max))
		refuse_range("value \"%.*s\" is out of range for column \"%s\"", (int) Min(len, 64), s, col->name);
	return neg ? (int64) (0 - v) : (int64) v;
}

/* A NUL-terminated copy, on the stack when short. */
static char *
terminated(const char *s, size_t len, char *small, size_t smallsize)
{
	char	   *out = len < smallsize ? small : palloc(len + 1);

	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

/*
 * A decimal number with at most 19 significant digits M and a power of ten
 * within 10^±22 is M * 10^e or M / 10^-e; when M < 2^53 both operands are
 * exact doubles and one IEEE operation rounds correctly, as strtod would
 * (Clinger's fast path).  Returns false for anything else.
 */
static bool
fast_float8(const char *s, size_t len, double *result)
{
	static const double powers[] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
	};
	size_t		i = 0;
	bool		neg = false;
	bool		any = false;
	uint64		m = 0;
	int			digits = 0;
	int			exp10 = 0;
	double		v;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	for (; i < len && isdigit((unsigned char) s[i]); i++)
	{
		any = true;
		if (m == 0 && s[i] == '0')
			continue;
		if (++digits > 19)
			return false;
		m = m * 10 + (s[i] - '0');
	}
	if (i < len && s[i] == '.')
	{
		for (i++; i < len && isdigit((unsigned char) s[i]); i++)
		{
			any = true;
			exp10--;
			if (m == 0 && s[i] == '0')
				continue;
			if (++digits > 19)
				return false;
			m = m * 10 + (s[i] - '0');
		}
	}
	if (!any)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		bool		eneg = false;
		int			e = 0;
		int			edigits = 0;

		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			eneg = s[i++] == '-';
		for (; i < len && isdigit((unsigned char) s[i]); i++)
		{
			if (++edigits > 4)
				return false;
			e = e * 10 + (s[i] - '0');
		}
		if (edigits == 0)
			return false;
		exp10 += eneg ? -e : e;
	}
	if (i != len || m > (UINT64CONST(1) << 53) || exp10 < -22 || exp10 > 22)
		return false;
	v = (double) m;
	v = exp10 < 0 ? v / powers[-exp10] : v * powers[exp10];
	*result = neg ? -v : v;
	return true;
}

static double
to_float8(const char *s, size_t len)
{
	char		small[64];
	char	   *str;
	double		v;

	if (fast_float8(s, len, &v))
		return v;
	str = terminated(s, len, small, sizeof(small));
	return float8in_internal(str, NULL, "double precision", str);
}

static int
two_digits(const char *s)
{
	if (!isdigit((unsigned char) s[0]) || !isdigit((unsigned char) s[1]))
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
 * ISO 8601 with an explicit offset: YYYY-MM-DD[T ]HH:MM:SS[.f…](Z|±HH[:MM]).
 * Returns false for anything else (the input function then decides).
 */
static bool
fast_timestamptz(const char *s, size_t len, TimestampTz *result)
{
	int			year,
				month,
				day,
				hour,
				minute,
				second;
	int64		usec = 0;
	int			offset = 0;
	size_t		i;

	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
		s[13] != ':' || s[16] != ':')
		return false;
	for (i = 0; i < 4; i++)
		if (!isdigit((unsigned char) s[i]))
			return false;
	year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	month = two_digits(s + 5);
	day = two_digits(s + 8);
	hour = two_digits(s + 11);
	minute = two_digits(s + 14);
	second = two_digits(s + 17);
	if (month < 1 || month > 12 || day < 1 || day > day_tab[isleap(year)][month - 1] ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59)
		return false;
	i = 19;
	if (i < len && s[i] == '.')
	{
		int64		scale = 100000;

		i++;
		if (i == len || !isdigit((unsigned char) s[i]))
			return false;
		for (; i < len && isdigit((unsigned char) s[i]); i++)
		{
			usec += (s[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (i < len && s[i] == 'Z')
		i++;
	else if (i < len && (s[i] == '+' || s[i] == '-'))
	{
		int			sign = s[i] == '-' ? -1 : 1;
		int			oh,
					om = 0;

		if (i + 3 > len || (oh = two_digits(s + i + 1)) < 0 || oh > 15)
			return false;
		i += 3;
		if (i < len && s[i] == ':')
			i++;
		if (i + 2 <= len && isdigit((unsigned char) s[i]))
		{
			if ((om = two_digits(s + i)) < 0 || om > 59)
				return false;
			i += 2;
		}
		offset = sign * (oh * 3600 + om * 60);
	}
	else
		return false;
	if (i != len)
		return false;

	*result = ((int64) (date2j(year, month, day) - POSTGRES_EPOCH_JDATE) * SECS_PER_DAY +
			   hour * 3600 + minute * 60 + second - offset) * USECS_PER_SEC + usec;
	return IS_VALID_TIMESTAMP(*result);
}

static Datum
to_timestamptz(const StreamColumn *col, int kind, const char *s, size_t len)
{
	TimestampTz ts;
	char		small[64];
	char	   *str;

	if (kind == JSONK_NUMBER)
	{
		/* Unix epoch seconds */
		double		secs = to_float8(s, len);

		if (isnan(secs) || secs < -210866803200.0 || secs > 9224318016000.0)
			refuse_range("value %.*s is out of range for timestamp column \"%s\"", (int) Min(len, 64), s, col->name);
		return TimestampTzGetDatum((TimestampTz) rint((secs - ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * (double) SECS_PER_DAY)) * USECS_PER_SEC));
	}
	if (fast_timestamptz(s, len, &ts))
		return TimestampTzGetDatum(ts);
	str = terminated(s, len, small, sizeof(small));
	return InputFunctionCall((FmgrInfo *) &col->input, str, col->ioparam, col->typmod);
}

/* The text of a field in the database encoding, checked. */
static char *
server_text(const char *s, size_t len, char *small, size_t smallsize)
{
	char	   *str;

	if (GetDatabaseEncoding() == PG_UTF8)
		return terminated(s, len, small, smallsize);
	str = pg_any_to_server(s, (int) len, PG_UTF8);
	return str == s ? terminated(s, len, small, smallsize) : str;
}

static Datum
convert(const StreamColumn *col, int kind, const char *s, size_t len)
{
	char		small[128];

	if (kind == JSONK_OBJECT || kind == JSONK_ARRAY)
	{
		if (col->conv != CONV_INPUT && col->conv != CONV_TEXT)
			refuse("column \"%s\" cannot take a JSON %s", col->name,
				   kind == JSONK_OBJECT ? "object" : "array");
	}
	switch (col->conv)
	{
		case CONV_INT2:
			return Int16GetDatum((int16) to_int(col, s, len, PG_INT16_MIN, PG_INT16_MAX));
		case CONV_INT4:
			return Int32GetDatum((int32) to_int(col, s, len, PG_INT32_MIN, PG_INT32_MAX));
		case CONV_INT8:
			return Int64GetDatum(to_int(col, s, len, PG_INT64_MIN, PG_INT64_MAX));
		case CONV_FLOAT4:
			/* rounded once, from the decimal, as float4in does */
			return DirectFunctionCall1(float4in, CStringGetDatum(terminated(s, len, small, sizeof(small))));
		case CONV_FLOAT8:
			return Float8GetDatum(to_float8(s, len));
		case CONV_BOOL:
			if (kind == JSONK_TRUE)
				return BoolGetDatum(true);
			if (kind == JSONK_FALSE)
				return BoolGetDatum(false);
			return DirectFunctionCall1(boolin, CStringGetDatum(terminated(s, len, small, sizeof(small))));
		case CONV_TEXT:
			if (GetDatabaseEncoding() == PG_UTF8)
				return PointerGetDatum(cstring_to_text_with_len(s, (int) len));
			return PointerGetDatum(cstring_to_text(server_text(s, len, small, sizeof(small))));
		case CONV_TIMESTAMPTZ:
			return to_timestamptz(col, kind, s, len);
		case CONV_INPUT:
			return InputFunctionCall((FmgrInfo *) &col->input,
									 server_text(s, len, small, sizeof(small)),
									 col->ioparam, col->typmod);
	}
	return (Datum) 0;
}

/* ---- payloads ---- */

static bool
json_field(void *arg, const char *key, size_t keylen, JsonKind kind, const char *text, size_t len)
{
	StreamDef  *def = arg;

	for (int i = 0; i < def->ncolumns; i++)
	{
		StreamColumn *col = &def->columns[i];

		if (col->source != SOURCE_FIELD || col->fieldlen != keylen ||
			memcmp(col->field, key, keylen) != 0)
			continue;
		def->kinds[i] = kind;
		def->texts[i] = kind == JSONK_NULL ? NULL : (text ? text : "");
		def->lens[i] = len;
		if (kind == JSONK_TRUE || kind == JSONK_FALSE)
		{
			def->texts[i] = kind == JSONK_TRUE ? "true" : "false";
			def->lens[i] = strlen(def->texts[i]);
		}
	}
	return true;
}

static void
read_json(StreamDef *def, const StreamMessage *msg)
{
	const char *error;

	if (msg->len > def->bufsize)
	{
		def->bufsize = msg->len * 2;
		def->buf = repalloc(def->buf, def->bufsize + JSON_PADDING);
	}
	memcpy(def->buf, msg->payload, msg->len);
	memset(def->buf + msg->len, 0, JSON_PADDING);
	error = JsonReadObject(def->buf, msg->len, json_field, def);
	if (error)
		refuse("%s", error);
}

/* RFC 4180: fields separated by the delimiter, "quoted" with "" inside. */
static void
read_csv(StreamDef *def, const StreamMessage *msg)
{
	const char *p = msg->payload;
	const char *end = p + msg->len;
	int			nfields = 0;
	int			maxpos = 0;

	if (!pg_verifymbstr(p, (int) msg->len, true))
		refuse("the message is not valid in the database encoding");
	for (int i = 0; i < def->ncolumns; i++)
		maxpos = Max(maxpos, def->columns[i].position);
	/* a trailing line break is not part of the last field */
	while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;

	for (;;)
	{
		const char *start = p;
		const char *text;
		size_t		len;
		bool		quoted = false;
		char	   *copy = NULL;

		nfields++;
		if (p < end && *p == '"')
		{
			size_t		n = 0;

			quoted = true;
			p++;
			copy = palloc(end - p + 1);
			for (;;)
			{
				if (p == end)
					refuse("field %d has an unclosed quote", nfields);
				if (*p == '"')
				{
					if (p + 1 < end && p[1] == '"')
					{
						copy[n++] = '"';
						p += 2;
						continue;
					}
					p++;
					break;
				}
				copy[n++] = *p++;
			}
			if (p < end && *p != def->delimiter)
				refuse("field %d has text after its closing quote", nfields);
			text = copy;
			len = n;
		}
		else
		{
			while (p < end && *p != def->delimiter)
			{
				if (*p == '"')
					refuse("field %d has a quote inside an unquoted value", nfields);
				p++;
			}
			text = start;
			len = p - start;
		}

		for (int i = 0; i < def->ncolumns; i++)
		{
			if (def->columns[i].source != SOURCE_FIELD || def->columns[i].position != nfields)
				continue;
			/* an empty unquoted field is NULL, as in COPY */
			def->texts[i] = (!quoted && len == 0) ? NULL : text;
			def->lens[i] = len;
			def->kinds[i] = quoted ? JSONK_STRING : JSONK_NUMBER;
		}
		if (p >= end || nfields >= maxpos)
			break;
		p++;					/* the delimiter */
	}
}

/* StreamMessageTime: the message's timestamp, DT_NOBEGIN if it has none. */
TimestampTz
StreamMessageTime(const StreamMessage *msg)
{
	if (!msg->has_timestamp)
		return DT_NOBEGIN;
	return time_t_to_timestamptz(msg->timestamp_ms / 1000) + (msg->timestamp_ms % 1000) * 1000;
}

/*
 * StreamDecode turns a message into a row of the stream in slot (a slot
 * of its descriptor), in CurrentMemoryContext.  Returns false if the
 * message is refused, with the reason and its SQLSTATE.  A message without
 * value is refused, unless def->no_value_rows: its row then has its
 * metadata (the key among them) and NULL fields, NOT NULL or not.
 */
bool
StreamDecode(StreamDef *def, const StreamMessage *msg, TupleTableSlot *slot,
			 char **error, char *sqlstate)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;
	SecuritySave save;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	memset(def->texts, 0, sizeof(char *) * def->ncolumns);

	/*
	 * Input functions of types other than the built-in ones run code of the
	 * owner's choice (a domain's CHECK): as the owner of the foreign table,
	 * read-only and in limited time (security.c), in a subtransaction that
	 * cleans up after their errors.
	 */
	if (def->user_types)
	{
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PushActiveSnapshot(GetTransactionSnapshot());
		SecurityEnter(def->owner, NULL, &save);
		SecurityTimerStart();
	}
	PG_TRY();
	{
		if (msg->payload == NULL && !def->no_value_rows)
			refuse("the message has no value");
		if (msg->payload == NULL)
			;					/* fields NULL: memset above */
		else if (def->format == FORMAT_JSON)
			read_json(def, msg);
		else
			read_csv(def, msg);

		for (int i = 0; i < def->ncolumns; i++)
		{
			StreamColumn *col = &def->columns[i];
			int			att = col->attnum - 1;
			Datum		value = (Datum) 0;
			bool		isnull = false;

			switch (col->source)
			{
				case SOURCE_FIELD:
					isnull = def->texts[i] == NULL;
					if (!isnull)
						value = convert(col, def->kinds[i], def->texts[i], def->lens[i]);
					break;
				case SOURCE_TIMESTAMP:
					isnull = !msg->has_timestamp;
					value = TimestampTzGetDatum(StreamMessageTime(msg));
					break;
				case SOURCE_PARTITION:
					value = col->type == INT8OID ? Int64GetDatum(msg->partition) :
						Int32GetDatum(msg->partition);
					break;
				case SOURCE_OFFSET:
					value = Int64GetDatum(msg->offset);
					break;
				case SOURCE_KEY:
					isnull = msg->key == NULL;
					if (!isnull)
						value = col->type == BYTEAOID ?
							PointerGetDatum(cstring_to_text_with_len(msg->key, (int) msg->keylen)) :
							convert(col, JSONK_STRING, msg->key, msg->keylen);
					break;
				case SOURCE_TOPIC:
					value = convert(col, JSONK_STRING, def->topic, strlen(def->topic));
					break;
			}
			if (isnull && col->notnull && msg->payload != NULL)
				refuse_null(col->source == SOURCE_FIELD && def->format == FORMAT_JSON ?
					   "field \"%s\" of NOT NULL column \"%s\" is missing or null" :
					   "field %s of NOT NULL column \"%s\" is missing or empty",
					   col->source == SOURCE_FIELD && def->format == FORMAT_JSON ?
					   col->field : psprintf("%d", col->position), col->name);
			slot->tts_values[att] = value;
			slot->tts_isnull[att] = isnull;
		}
		if (def->user_types)
		{
			(void) SecurityTimerStop();
			SecurityLeave(&save);
			PopActiveSnapshot();
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		timed_out = def->user_types && SecurityTimerStop();

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (def->user_types)
		{
			/* which restores the user and the rest */
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		if (timed_out)
		{
			edata->sqlerrcode = ERRCODE_QUERY_CANCELED;
			edata->message = psprintf("converting the message took longer than flowstate.evaluation_timeout (%d ms)",
									  flowstate_evaluation_timeout);
		}
		*error = edata->message;
		memcpy(sqlstate, unpack_sql_state(edata->sqlerrcode), 6);
		ok = false;
	}
	PG_END_TRY();
	if (ok)
		ExecStoreVirtualTuple(slot);
	return ok;
}
