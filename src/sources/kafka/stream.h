/*-------------------------------------------------------------------------
 *
 * stream.h
 *	  A Kafka stream: its foreign table's options, and its messages as rows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_STREAM_H
#define FLOWSTATE_STREAM_H

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/pg_list.h"

/* Where a column's value comes from. */
typedef enum StreamSource
{
	SOURCE_FIELD,				/* a field of the message's payload */
	SOURCE_TIMESTAMP,			/* the message's Kafka timestamp */
	SOURCE_PARTITION,
	SOURCE_OFFSET,
	SOURCE_KEY,					/* the message's key, as text */
	SOURCE_TOPIC
} StreamSource;

/* How a payload field becomes a value of the column's type. */
typedef enum StreamConversion
{
	CONV_INT2,
	CONV_INT4,
	CONV_INT8,
	CONV_FLOAT4,
	CONV_FLOAT8,
	CONV_BOOL,
	CONV_TEXT,
	CONV_TIMESTAMPTZ,
	CONV_INPUT					/* the type's input function */
} StreamConversion;

typedef struct StreamColumn
{
	AttrNumber	attnum;
	char	   *name;
	bool		notnull;
	StreamSource source;
	char	   *field;			/* JSON: the key */
	size_t		fieldlen;
	int			position;		/* CSV: 1-based field number */
	StreamConversion conv;
	Oid			type;
	int32		typmod;
	FmgrInfo	input;
	Oid			ioparam;
} StreamColumn;

typedef enum StreamFormat
{
	FORMAT_JSON,
	FORMAT_CSV
} StreamFormat;

/* A foreign table of flowstate_kafka, with what consuming it needs. */
typedef struct StreamDef
{
	Oid			relid;
	Oid			owner;			/* the foreign table's: conversions run as it */
	bool		user_types;		/* a column's type is not a built-in one */
	char	   *name;			/* qualified, for messages */
	char	   *topic;
	StreamFormat format;
	char		delimiter;		/* CSV */
	bool		start_latest;	/* a view's first offset: latest, else earliest */
	int			workers;
	int64		idle_timeout_us;	/* a partition without messages this long
									 * leaves the watermark; -1: none does */
	char	   *group_id;
	List	   *properties;		/* DefElem: librdkafka properties, the
								 * server's then the user mapping's */
	TupleDesc	desc;
	int			ncolumns;
	StreamColumn *columns;

	bool		no_value_rows;	/* a message without value gives a row of
								 * its key and metadata (for histories) */

	/* decoding state */
	char	   *buf;			/* the payload, padded for the JSON parser */
	size_t		bufsize;
	const char **texts;			/* per column: the field's text, or NULL */
	size_t	   *lens;
	int		   *kinds;
} StreamDef;

/* A message, as the consumer hands it over. */
typedef struct StreamMessage
{
	const char *payload;
	size_t		len;
	const char *key;
	size_t		keylen;
	int32		partition;
	int64		offset;
	bool		has_timestamp;
	int64		timestamp_ms;	/* Unix epoch milliseconds */
} StreamMessage;

/* Options of the foreign tables, columns, servers and user mappings. */
extern const char *const StreamTableOptions[];
extern const char *const StreamColumnOptions[];

extern TimestampTz StreamMessageTime(const StreamMessage *msg);

extern StreamDef *StreamLoad(Oid relid, MemoryContext cxt);
extern bool StreamDecode(StreamDef *def, const StreamMessage *msg, TupleTableSlot *slot,
						 char **error, char *sqlstate);
extern void StreamCheckTableOption(DefElem *def);
extern void StreamCheckColumnOption(DefElem *def);

#endif							/* FLOWSTATE_STREAM_H */
