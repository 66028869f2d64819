/*-------------------------------------------------------------------------
 *
 * query.h
 *	  Analysis of a continuous view's defining query: what is supported,
 *	  its groups, aggregates and window (into a ViewDef), and the SQL of the
 *	  view users read.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_QUERY_H
#define FLOWSTATE_QUERY_H

#include "nodes/parsenodes.h"
#include "utils/relcache.h"

#include "query/view_def.h"

/* the foreign-data wrapper of Kafka streams */
#define KAFKA_FDW_NAME "flowstate_kafka"

extern bool QueryIsStream(Oid relid);
extern Query *QueryParse(const char *text, RawStmt **raw);
extern void QueryCheck(Query *query);
extern bool QueryUsesTimeZone(Query *query);
extern void QueryCollectAggrefs(Node *node, List **aggrefs);
extern void QueryDescribe(Query *query, ViewDef *def);
extern Query *QueryOfDefinition(Oid def_relid);
extern char *QueryViewSql(ViewDef *def, const char *state_table, bool partial);
extern char *QueryFinalSql(ViewDef *def, const char *state_table);
extern Expr *QueryColumnExpr(ViewDef *def, int colno, bool *reads_keys, bool *reads_aggs);
extern char *QueryKeySql(ViewDef *def, int keyno, const char *alias);
extern char *QueryTsSql(ViewDef *def, const char *alias);

/* join.c */
extern RangeTblEntry *JoinAnalyze(Query *query, JoinExpr *j, Index *source_rti, JoinSpec *join,
								  bool check);
extern Oid	JoinKeyIndex(Relation dim, AttrNumber keycol, Oid opno, Oid collation,
						 bool partial, bool *unique);

#endif							/* FLOWSTATE_QUERY_H */
