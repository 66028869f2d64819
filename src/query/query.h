/*-------------------------------------------------------------------------
 *
 * query.h
 *	  Analysis of a continuous view's defining query: what is supported,
 *	  its groups, aggregates and window, and the SQL of the view users read.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_QUERY_H
#define FLOWSTATE_QUERY_H

#include "nodes/parsenodes.h"

#include "aggregates/layout.h"

/* A tumbling window found among the GROUP BY expressions. */
typedef struct WindowSpec
{
	bool		present;
	int			keyno;			/* the key that holds the window start */
	Node	   *ts_expr;		/* the event time it is computed from */
	Interval   *size;			/* the window length */
	int64		size_us;		/* the same in microseconds, 0 if not fixed */
	bool		range_ok;		/* the window is [start, start + size) of ts */
} WindowSpec;

typedef struct ViewDef
{
	MemoryContext cxt;			/* holds it and what the worker derives from it */

	/* catalog (flowstate.view) */
	int32		view_id;
	char	   *view_name;		/* qualified, for messages */
	Oid			view_relid;
	Oid			def_relid;
	Oid			state_relid;
	Oid			source_relid;
	Oid			owner;			/* the view's owner: what it evaluates runs as */
	bool		stream;			/* the source is a Kafka stream */
	int64		watermark_delay_us;
	int64		allowed_lateness_us;	/* -1: never late */
	int64		memory_limit;	/* bytes, 0: flowstate.memory_limit */
	bool		backfilling;
	bool		has_max_event_time; /* max_event_time is known */
	TimestampTz max_event_time; /* largest event time as of the last flush */

	/* from the defining query */
	Query	   *query;
	Index		source_rti;
	Expr	   *where;			/* NULL if none */
	List	   *key_exprs;		/* Expr per group key */
	List	   *aggrefs;		/* Aggref per distinct aggregate call */
	ViewLayout	layout;
	WindowSpec	window;
} ViewDef;

/* the foreign-data wrapper of Kafka streams */
#define KAFKA_FDW_NAME "flowstate_kafka"

extern bool QueryIsStream(Oid relid);
extern Query *QueryParse(const char *text, RawStmt **raw);
extern void QueryCheck(Query *query);
extern void QueryDescribe(Query *query, ViewDef *def);
extern Query *QueryOfDefinition(Oid def_relid);
extern char *QueryViewSql(ViewDef *def, const char *state_table, bool partial);
extern Expr *QueryColumnExpr(ViewDef *def, int colno, bool *reads_keys, bool *reads_aggs);
extern char *QueryKeySql(ViewDef *def, int keyno, const char *alias);
extern char *QueryTsSql(ViewDef *def, const char *alias);

#endif							/* FLOWSTATE_QUERY_H */
